/**
 * Splits a byte stream of newline-delimited JSON into parsed messages. Chunks
 * may end in the middle of a message (or of a UTF-8 character) and may hold
 * several messages; bytes are kept until a newline completes a line.
 */
import { type EtcdErrorOptions, ProtocolError } from './errors.js';

/** A stream line is not JSON. `messages` holds the ones completed before it in the same chunk. */
export class NdjsonError extends ProtocolError {
  readonly messages: unknown[];

  constructor(message: string, messages: unknown[], options: EtcdErrorOptions = {}) {
    super(message, options);
    this.messages = messages;
  }
}

const NEWLINE = 0x0a;

export class NdjsonParser {
  #pending: Buffer[] = [];
  #pendingLength = 0;

  /**
   * Feeds a chunk and returns the messages it completes, in order. A line that
   * is not JSON throws `NdjsonError`, which carries the messages before it.
   */
  push(chunk: Uint8Array): unknown[] {
    const messages: unknown[] = [];
    let start = 0;
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, start)) {
      this.#append(chunk.subarray(start, i));
      this.#flush(messages);
      start = i + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
    return messages;
  }

  /** Call at the end of the stream: a last line without a newline still counts. */
  end(): unknown[] {
    const messages: unknown[] = [];
    this.#flush(messages);
    return messages;
  }

  #append(part: Uint8Array): void {
    if (part.length === 0) return;
    this.#pending.push(Buffer.from(part));
    this.#pendingLength += part.length;
  }

  #flush(into: unknown[]): void {
    if (this.#pendingLength === 0) return;
    const line = Buffer.concat(this.#pending, this.#pendingLength).toString('utf8').trim();
    this.#pending = [];
    this.#pendingLength = 0;
    if (line === '') return;
    try {
      into.push(JSON.parse(line));
    } catch (err) {
      throw new NdjsonError(`a stream line is not JSON: ${line.slice(0, 120)}`, into, {
        cause: err,
      });
    }
  }
}
