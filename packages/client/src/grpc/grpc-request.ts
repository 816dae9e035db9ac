/**
 * One gRPC call on one endpoint: a request stream with one framed message,
 * and its answer turned into etcd's message in proto3 JSON form, or an error.
 *
 * How it works: the request is made once the endpoint's session is connected
 * (a failure before that is a plain UnavailableError: nothing was sent). The
 * call's `CallScope` holds it while it is in flight and aborts it on the
 * deadline or the caller's signal by resetting the stream. etcd's status
 * (`grpc-status`, `grpc-message`, in the trailers or, for an error without a
 * body, in the headers) is typed by the same table as the gateway's errors. A
 * stream reset without a status is a transport failure: the write, if any, may
 * have been applied; a stream the server refused (REFUSED_STREAM) was never
 * processed.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { CallScope } from '../call-scope.js';
import { fromGatewayError, ProtocolError, UnavailableError } from '../errors.js';
import type { Json } from '../wire.js';
import { decodeMessage } from './grpc-codec.js';
import { FrameReader } from './grpc-frames.js';
import type { GrpcLink } from './grpc-link.js';
import type { GrpcMethod } from './grpc-methods.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The headers of a gRPC request to `path`, with the auth token as metadata. */
export function grpcHeaders(path: string, token: string | undefined): http2.OutgoingHttpHeaders {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  if (token !== undefined) headers.token = token;
  return headers;
}

/** The status etcd ended a stream with, typed; undefined for OK. */
export function statusError(headers: IncomingHttpHeaders, write: boolean): Error | undefined {
  const status = headers['grpc-status'];
  if (status === undefined || status === '0') return undefined;
  const raw = headers['grpc-message'];
  const message = typeof raw === 'string' ? decodeURIComponent(raw) : '';
  return fromGatewayError(Number(status), message, { write });
}

/**
 * Sends `body` (one framed request message) as `method` on `link` within
 * `scope`. A method that streams (LeaseKeepAlive) gets its one answer wrapped
 * as `{ result }`, as the gateway frames it.
 */
export function grpcRequest(
  link: GrpcLink,
  method: GrpcMethod,
  body: Buffer,
  token: string | undefined,
  write: boolean,
  scope: CallScope,
): Promise<Json> {
  if (scope.aborted) return Promise.reject(scope.reason);
  const session = link.ready;
  if (session) return new GrpcRequest(link, method, write, scope).send(session, body, token);
  // Not connected yet: the call can be aborted while it waits, and nothing is in doubt.
  const waiting: { abort(reason: unknown): void } = { abort: () => {} };
  const connected = new Promise<ClientHttp2Session>((resolve, reject) => {
    waiting.abort = reject;
    link.connect().then(resolve, reject);
  });
  scope.inFlight = waiting;
  return connected.then((s) => {
    if (scope.inFlight === waiting) scope.inFlight = undefined;
    if (scope.aborted) throw scope.reason;
    return new GrpcRequest(link, method, write, scope).send(s, body, token);
  });
}

class GrpcRequest {
  #resolve!: (json: Json) => void;
  #reject!: (error: unknown) => void;
  #settled = false;
  #stream: http2.ClientHttp2Stream | undefined;
  readonly #reader = new FrameReader();
  #messages: Uint8Array[] = [];
  #failure: Error | undefined;
  #statusSeen = false;

  constructor(
    readonly link: GrpcLink,
    readonly method: GrpcMethod,
    readonly write: boolean,
    readonly scope: CallScope,
  ) {}

  send(session: ClientHttp2Session, body: Buffer, token: string | undefined): Promise<Json> {
    const promise = new Promise<Json>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.link.request(session, grpcHeaders(this.method.path, token), false);
    } catch (err) {
      // The session went away between the check and the request: nothing was sent.
      return Promise.reject(new UnavailableError(`${this.link.url}: ${String(err)}`));
    }
    this.#stream = stream;
    this.scope.inFlight = this;
    if (this.write) this.scope.inDoubt = true;
    stream.on('response', (headers) => this.#headers(headers));
    stream.on('trailers', (headers) => this.#headers(headers));
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const message of this.#reader.push(chunk)) this.#messages.push(message);
      } catch (err) {
        this.#failure ??= err as Error;
      }
    });
    stream.on('error', (err) => {
      this.#failure ??= err;
    });
    stream.on('close', () => this.#closed(stream.rstCode));
    stream.end(body);
    return promise;
  }

  /** Settles the call with `reason` now and resets the stream. */
  abort(reason: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(reason);
    this.#stream?.close(NGHTTP2_CANCEL);
    // A missed deadline may mean the session hangs: check it.
    if (this.scope.timedOut) this.link.suspect();
  }

  #headers(headers: IncomingHttpHeaders): void {
    const status = headers[':status'];
    if (status !== undefined && Number(status) !== 200) {
      this.#failure ??= new ProtocolError(
        `${this.link.url}${this.method.path} answered HTTP ${status}, not gRPC`,
      );
      return;
    }
    if (headers['grpc-status'] === undefined) return;
    this.#statusSeen = true;
    this.#failure ??= statusError(headers, this.write);
  }

  #closed(rstCode: number | undefined): void {
    if (this.#settled) return;
    this.#settle();
    if (this.#failure) {
      this.#reject(this.#failure);
      return;
    }
    if (!this.#statusSeen) {
      const why = `${this.link.url}${this.method.path}: the stream ended without a status${rstCode ? ` (HTTP/2 error ${rstCode})` : ''}`;
      // A refused stream was never processed. Any other end is a transport
      // failure, which failover judges as it judges a cut connection.
      this.#reject(rstCode === NGHTTP2_REFUSED_STREAM ? new UnavailableError(why) : new Error(why));
      return;
    }
    const message = this.#messages[0];
    if (message === undefined || this.#reader.partial) {
      this.#reject(new ProtocolError(`${this.link.url}${this.method.path} answered no message`));
      return;
    }
    let json: Json;
    try {
      json = decodeMessage(this.method, message);
    } catch (err) {
      this.#reject(err);
      return;
    }
    this.#resolve(this.method.streaming ? { result: json } : json);
  }

  #settle(): void {
    this.#settled = true;
    if (this.scope.inFlight === this) this.scope.inFlight = undefined;
  }
}
