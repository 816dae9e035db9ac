/**
 * Splits a byte stream of newline-delimited JSON into parsed messages. Chunks
 * may end in the middle of a message (or of a UTF-8 character) and may hold
 * several messages; bytes are kept until a newline completes a line.
 */
import { ProtocolError } from '../errors.js';

const NEWLINE = 0x0a;

export class NdjsonParser {
  #pending: Buffer[] = [];
  #pendingLength = 0;

  #error: ProtocolError | undefined;

  /**
   * The line that was not JSON, once one came: the stream cannot go on. The
   * call that met it returned the messages before it; later calls throw this.
   */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /**
   * Feeds a chunk and returns the messages it completes, in order. A line that
   * is not JSON throws a ProtocolError; if messages came before it in the same
   * chunk, they are returned instead and the error is left in `error`.
   */
  push(chunk: Uint8Array): unknown[] {
    if (this.#error) throw this.#error;
    const messages: unknown[] = [];
    let start = 0;
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, start)) {
      this.#append(chunk.subarray(start, i));
      this.#flush(messages);
      if (this.#error) {
        if (messages.length === 0) throw this.#error;
        return messages;
      }
      start = i + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
    return messages;
  }

  /** Call at the end of the stream: a last line without a newline still counts. */
  end(): unknown[] {
    if (this.#error) throw this.#error;
    const messages: unknown[] = [];
    this.#flush(messages);
    if (this.#error) throw this.#error;
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
      this.#error = new ProtocolError(`a stream line is not JSON: ${line.slice(0, 120)}`, {
        cause: err,
      });
    }
  }
}
