/**
 * The limit of the gRPC path: one HTTP/2 session (node:http2, cleartext with
 * prior knowledge, which etcd's client port accepts) carrying hand-framed
 * gRPC calls. Requests are encoded by raw-proto.ts, mostly before the
 * measured phase; answers are read only as far as the next call needs. It
 * checks the gRPC status and nothing else: no deadlines, no timers, no
 * retries, no keepalive. Any gRPC client of etcd does at least this.
 */
import http2, { type IncomingHttpHeaders } from 'node:http2';
import { frame, PREFIX, readWatchResponse, watchCreateRequest } from './raw-proto.js';

/** The protobuf package of etcd's services, which begins every path. */
const PACKAGE = '/etcdserverpb.';
const WATCH = `${PACKAGE}Watch/Watch`;

function headers(path: string): http2.OutgoingHttpHeaders {
  return {
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
}

/**
 * The error of a gRPC status other than 0 (OK) in `h`, the answer's trailers
 * or, for an answer without a body, its headers; undefined for OK or none.
 */
function statusError(path: string, h: IncomingHttpHeaders): Error | undefined {
  const status = h['grpc-status'];
  if (status === undefined || status === '0') return undefined;
  const message = h['grpc-message'];
  const text = typeof message === 'string' ? decodeURIComponent(message) : '';
  return new Error(`${path}: grpc-status ${String(status)}: ${text}`);
}

/** The one message of a unary answer, from the chunks of its body. */
function unframe(path: string, chunks: Buffer[]): Buffer {
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  if (body.length < PREFIX || body[0] !== 0 || body.readUInt32BE(1) !== body.length - PREFIX) {
    throw new Error(`${path}: the answer is not one uncompressed message (${body.length} bytes)`);
  }
  return body.subarray(PREFIX);
}

/** Cuts the body of a streaming answer into messages, across chunk boundaries. */
class Deframer {
  #pending: Buffer | undefined;

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (buf.length >= PREFIX) {
      if (buf[0] !== 0) throw new Error('a compressed message, which was not asked for');
      const end = PREFIX + buf.readUInt32BE(1);
      if (buf.length < end) break;
      onMessage(buf.subarray(PREFIX, end));
      buf = buf.subarray(end);
    }
    this.#pending = buf.length > 0 ? buf : undefined;
  }
}

export class RawGrpc {
  readonly #session: http2.ClientHttp2Session;
  readonly #streams = new Set<http2.ClientHttp2Stream>();
  #failure: Error | undefined;
  #closing = false;

  /** `endpoint`: etcd's client URL, `http://host:port`. */
  constructor(endpoint: string) {
    this.#session = http2.connect(endpoint);
    this.#session.on('error', (err) => {
      this.#failure = err;
    });
  }

  /**
   * One unary call, `method` being `<service>/<method>` (`KV/Put`), with a
   * framed request; resolves to the answer's message.
   */
  call(method: string, framed: Uint8Array): Promise<Buffer> {
    if (this.#failure) return Promise.reject(this.#failure);
    const path = `${PACKAGE}${method}`;
    return new Promise((resolve, reject) => {
      const stream = this.#session.request(headers(path));
      const chunks: Buffer[] = [];
      let status: IncomingHttpHeaders | undefined;
      const read = (h: IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) status = h;
      };
      stream.on('response', read);
      stream.on('trailers', read);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('close', () => {
        if (!status) {
          reject(new Error(`${path}: closed without a gRPC status (code ${stream.rstCode})`));
          return;
        }
        const failed = statusError(path, status);
        if (failed) reject(failed);
        else {
          try {
            resolve(unframe(path, chunks));
          } catch (err) {
            reject(err);
          }
        }
      });
      stream.end(framed);
    });
  }

  /**
   * Opens a Watch stream with one watcher of `key` up to `rangeEnd`, and
   * resolves once etcd has created it. The value of each event goes to
   * `onValue`, as a Latin-1 string. When the stream ends or etcd cancels the
   * watcher, `onEnd` is called once with the reason; not when `close()` ends it.
   */
  watch(
    key: string,
    rangeEnd: string,
    onValue: (value: string) => void,
    onEnd: (reason: Error) => void,
  ): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const stream = this.#session.request(headers(WATCH));
      this.#streams.add(stream);
      let created = false;
      let ended = false;
      const end = (reason: Error) => {
        if (ended) return;
        ended = true;
        if (created) {
          if (!this.#closing) onEnd(reason);
        } else reject(reason);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      };
      const deframer = new Deframer();
      const onMessage = (message: Buffer) => {
        const news = readWatchResponse(message, onValue);
        if (news.created && !created) {
          created = true;
          resolve();
        }
        if (news.canceled !== undefined) end(new Error(`${WATCH}: canceled: ${news.canceled}`));
      };
      stream.on('data', (chunk: Buffer) => {
        try {
          deframer.push(chunk, onMessage);
        } catch (err) {
          end(err as Error);
        }
      });
      const read = (h: IncomingHttpHeaders) => {
        const failed = statusError(WATCH, h);
        if (failed) end(failed);
      };
      stream.on('response', read);
      stream.on('trailers', read);
      stream.on('error', end);
      stream.on('close', () => {
        this.#streams.delete(stream);
        end(new Error(`${WATCH}: the stream ended (code ${stream.rstCode})`));
      });
      stream.write(frame(watchCreateRequest(key, rangeEnd)));
    });
  }

  /** Cancels open watch streams and closes the session. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const stream of this.#streams) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (this.#session.closed || this.#session.destroyed) return;
    await new Promise<void>((resolve) => this.#session.close(resolve));
  }
}
