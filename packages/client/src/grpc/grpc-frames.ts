/**
 * gRPC's message framing on an HTTP/2 stream: each message is a 5-byte
 * prefix (a compressed flag, always 0 here, and the length as a big-endian
 * uint32) followed by the message's protobuf bytes. A reader gets the body in
 * chunks of any size and hands out whole messages.
 */
import { ProtocolError } from '../errors.js';

const PREFIX = 5;

/** `message` with its gRPC prefix. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX);
  return out;
}

export class FrameReader {
  #pending: Buffer | undefined;

  /** Adds `chunk` and returns the messages it completed. */
  push(chunk: Buffer): Uint8Array[] {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    const messages: Uint8Array[] = [];
    while (buf.length >= PREFIX) {
      if (buf[0] !== 0) throw new ProtocolError('etcd sent a compressed gRPC message');
      const length = buf.readUInt32BE(1);
      if (buf.length < PREFIX + length) break;
      messages.push(buf.subarray(PREFIX, PREFIX + length));
      buf = buf.subarray(PREFIX + length);
    }
    this.#pending = buf.length > 0 ? buf : undefined;
    return messages;
  }

  /** Bytes of an unfinished message are left: the stream ended in the middle of one. */
  get partial(): boolean {
    return this.#pending !== undefined;
  }
}
