/**
 * A gRPC bidirectional stream (Watch or LeaseKeepAlive) seen as a
 * `MessageStream`: requests are encoded and framed as they are sent, answers
 * decoded and handed on as `{ result }`, as the gateway frames them. The
 * stream's end carries etcd's status, typed as a read's error would be.
 *
 * Events reach the owner only after it set its handlers: opening is reported
 * on a later turn of the event loop, and nothing after the end.
 */
import http2, { type ClientHttp2Stream } from 'node:http2';
import { UnavailableError } from '../errors.js';
import type { MessageStream } from '../transport.js';
import { decodeMessage, encodeMessage } from './grpc-codec.js';
import { FrameReader } from './grpc-frames.js';
import type { GrpcLink } from './grpc-link.js';
import type { GrpcMethod } from './grpc-methods.js';
import { grpcHeaders, statusError } from './grpc-request.js';

const { NGHTTP2_CANCEL } = http2.constants;
/** How long a politely ended stream may take to finish before it is cut. */
const CLOSE_GRACE_MS = 1_000;

export interface GrpcStreamOptions {
  token: string | undefined;
  /** Ask etcd to end the stream when the member has no leader (`hasleader` metadata). */
  requireLeader: boolean;
  /** etcd refused the token the stream was opened with. */
  tokenRefused(token: string): void;
}

/** Opens `method`'s stream on `link`; rejects when the endpoint cannot be reached. */
export async function openGrpcStream(
  link: GrpcLink,
  method: GrpcMethod,
  options: GrpcStreamOptions,
): Promise<MessageStream> {
  const session = await link.connect();
  const headers = grpcHeaders(method.path, options.token);
  if (options.requireLeader) headers.hasleader = 'true';
  return new GrpcStream(link, method, link.request(session, headers, false), options);
}

class GrpcStream implements MessageStream {
  onopen: (() => void) | null = null;
  onmessage: MessageStream['onmessage'] = null;
  onclose: MessageStream['onclose'] = null;
  readonly #stream: ClientHttp2Stream;
  readonly #reader = new FrameReader();
  #failure: Error | undefined;
  #ended = false;

  constructor(
    readonly link: GrpcLink,
    readonly method: GrpcMethod,
    stream: ClientHttp2Stream,
    options: GrpcStreamOptions,
  ) {
    this.#stream = stream;
    const opened = () => setImmediate(() => !this.#ended && this.onopen?.());
    if (stream.pending) stream.once('ready', opened);
    else opened();
    stream.on('response', (headers) => this.#status(headers, options));
    stream.on('trailers', (headers) => this.#status(headers, options));
    stream.on('data', (chunk: Buffer) => this.#data(chunk));
    stream.on('error', (err) => {
      this.#failure ??= new UnavailableError(
        `${method.path} stream to ${link.url} failed: ${err.message}`,
        {
          cause: err,
        },
      );
    });
    stream.on('close', () => {
      const error =
        this.#failure ?? new UnavailableError(`${method.path} stream to ${link.url} closed`);
      this.#end(error);
    });
  }

  #status(headers: http2.IncomingHttpHeaders, options: GrpcStreamOptions): void {
    const error = statusError(headers, false);
    if (!error) return;
    if (options.token !== undefined && error.message.includes('invalid auth token')) {
      options.tokenRefused(options.token);
    }
    this.#failure ??= error;
  }

  #data(chunk: Buffer): void {
    if (this.#ended) return;
    try {
      for (const bytes of this.#reader.push(chunk)) {
        const result = decodeMessage(this.method, bytes);
        if (this.#ended) return;
        this.onmessage?.({ result });
      }
    } catch (err) {
      // A message that cannot be read ends the stream: the owner hears why, then it is cut.
      this.#end(err as Error);
      if (!this.#stream.destroyed) this.#stream.close(NGHTTP2_CANCEL);
    }
  }

  #end(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    const onclose = this.onclose;
    this.onopen = this.onmessage = this.onclose = null;
    onclose?.(error);
  }

  send(message: Parameters<MessageStream['send']>[0]): void {
    if (this.#ended || this.#stream.destroyed || this.#stream.writableEnded) {
      throw new UnavailableError(`${this.method.path} stream to ${this.link.url} is closed`);
    }
    this.#stream.write(encodeMessage(this.method, message));
  }

  close(): void {
    this.onopen = this.onmessage = this.onclose = null;
    this.#ended = true;
    if (this.#stream.destroyed) return;
    this.#stream.end();
    setTimeout(() => this.#stream.close(NGHTTP2_CANCEL), CLOSE_GRACE_MS).unref();
  }

  destroy(): void {
    this.onopen = this.onmessage = this.onclose = null;
    this.#ended = true;
    if (!this.#stream.destroyed) this.#stream.close(NGHTTP2_CANCEL);
  }
}
