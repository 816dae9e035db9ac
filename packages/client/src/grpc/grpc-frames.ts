/**
 * gRPC's message framing on an HTTP/2 stream: each message is a 5-byte
 * prefix (a compressed flag, always 0 here, and the length as a big-endian
 * uint32) followed by the message's protobuf bytes. A reader gets the body in
 * chunks of any size and hands out whole messages.
 */
import { ProtocolError } from '../errors.js';

export const PREFIX = 5;

/** `message` with its gRPC prefix. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX);
  return out;
}

/**
 * A message written after `PREFIX` bytes of room, framed where it lies: the
 * prefix is filled in, and no copy is made.
 */
export function sealFrame(room: Uint8Array): Buffer {
  const out = Buffer.from(room.buffer, room.byteOffset, room.byteLength);
  out[0] = 0;
  out.writeUInt32BE(out.length - PREFIX, 1);
  return out;
}

export class FrameReader {
  /** Bytes not yet handed out, in the chunks they came in. */
  #chunks: Buffer[] = [];
  #length = 0;
  /** Length of the message being read (prefix included), once its prefix is in. */
  #need = 0;

  /** Adds `chunk` and returns the messages it completed. Chunks are joined once per message. */
  push(chunk: Buffer): Uint8Array[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const messages: Uint8Array[] = [];
    for (;;) {
      if (this.#need === 0) {
        if (this.#length < PREFIX) break;
        const head = this.#join(PREFIX);
        if (head[0] !== 0) throw new ProtocolError('etcd sent a compressed gRPC message');
        this.#need = PREFIX + head.readUInt32BE(1);
      }
      if (this.#length < this.#need) break;
      const whole = this.#join(this.#need);
      messages.push(whole.subarray(PREFIX, this.#need));
      this.#drop(this.#need);
      this.#need = 0;
    }
    return messages;
  }

  /** The first `n` buffered bytes as one buffer, joining chunks only when they must be. */
  #join(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined;
  }

  /** Forgets the first `n` buffered bytes. */
  #drop(n: number): void {
    let left = n;
    while (left > 0) {
      const first = this.#chunks[0]!;
      if (first.length <= left) {
        this.#chunks.shift();
        left -= first.length;
      } else {
        this.#chunks[0] = first.subarray(left);
        left = 0;
      }
    }
    this.#length -= n;
  }

  /** Bytes of an unfinished message are left: the stream ended in the middle of one. */
  get partial(): boolean {
    return this.#length > 0;
  }
}
