/**
 * What the fault proxy learns from the bytes of one connection, read as they
 * pass: the requests it carries and which of them an answer chunk belongs to.
 * A connection that opens with the HTTP/2 preface (h2c with prior knowledge,
 * as gRPC does) is read frame by frame; any other is read as HTTP/1.1, whose
 * request lines are found in the bytes.
 */
import { requestNames } from './grpc-paths.js';
import { H2Peek } from './h2-peek.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const REQUEST_LINE = /(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) (\S+) HTTP\/1\.[01]\r\n/g;

/** A request as the proxy knows it: its path and that path's name on the other transport, if any. */
export type RequestNames = readonly string[];

export class ConnectionPeek {
  #protocol: 'unknown' | 'http1' | 'h2' = 'unknown';
  /** The first client bytes while they could still be the start of the preface. */
  #opening: Buffer = Buffer.alloc(0);
  /** HTTP/1.1: the last request seen; the answer chunks that follow are taken as its answer. */
  #last: RequestNames = [''];
  #h2: H2Peek | undefined;

  get protocol(): 'unknown' | 'http1' | 'h2' {
    return this.#protocol;
  }

  /** Client bytes; returns the requests that start in them. */
  requests(chunk: Buffer): RequestNames[] {
    let bytes = chunk;
    if (this.#protocol === 'unknown') {
      bytes = this.#opening.length > 0 ? Buffer.concat([this.#opening, chunk]) : chunk;
      const n = Math.min(bytes.length, PREFACE.length);
      if (!bytes.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        this.#protocol = 'http1';
      } else if (bytes.length < PREFACE.length) {
        this.#opening = bytes;
        return [];
      } else {
        this.#protocol = 'h2';
        this.#h2 = new H2Peek();
        bytes = bytes.subarray(PREFACE.length);
      }
      this.#opening = Buffer.alloc(0);
    }
    if (this.#h2) return this.#h2.requests(bytes).map(requestNames);
    const found: RequestNames[] = [];
    for (const match of bytes.toString('latin1').matchAll(REQUEST_LINE)) {
      this.#last = requestNames(match[1] ?? '');
      found.push(this.#last);
    }
    return found;
  }

  /** Member bytes; returns the requests they answer (on HTTP/1.1, the last request seen). */
  answers(chunk: Buffer): RequestNames[] {
    if (this.#h2) return this.#h2.answers(chunk).map(requestNames);
    return [this.#last];
  }
}
