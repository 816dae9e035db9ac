/**
 * One request to etcd's JSON gateway on one endpoint, and its answer turned
 * into a JSON object or an error.
 *
 * How it works: the request goes to the endpoint's undici Pool through
 * `dispatch` with a handler that keeps the body's chunks and parses them once
 * the answer is complete; no response stream and no AbortSignal are made.
 * The handler has the callbacks undici's core calls itself (`onConnect`,
 * `onHeaders`, `onData`, `onComplete`, `onError`): one written with the newer
 * `onRequestStart`/`onResponse*` callbacks is adapted to these by undici, which
 * then parses every response header into an object, a cost per call as large
 * as the rest of this handler, for headers etcd's answers do not need. The
 * call's `CallScope` holds the request while it is in flight and aborts it on
 * the deadline or the caller's signal: the call settles at once, even while
 * the request still waits for a free connection (a write that never got one
 * is not in doubt), and the connection is cut if the request was already sent.
 */
import type { Dispatcher } from 'undici';
import type { CallScope } from '../call-scope.js';
import type { Endpoint } from '../endpoints.js';
import { fromGatewayError, ProtocolError } from '../errors.js';
import { EndpointUnreachable } from '../failover.js';
import { asObject, type Json, str } from '../wire.js';
import type { GatewayLink } from './gateway-links.js';

const HEADERS = { 'content-type': 'application/json' };
/** What undici is told when a call stops its request; the call itself settles with its own reason. */
const STOPPED = new Error('the call ended before its answer');

export function headersFor(token: string | undefined): Record<string, string> {
  return token === undefined ? HEADERS : { ...HEADERS, authorization: token };
}

/**
 * Sends `method path` with `body` to `endpoint` within `scope`. Resolves to
 * etcd's answer; rejects with etcd's error, an `ErrorPage`, a `ProtocolError`,
 * undici's error, or the scope's abort reason.
 */
export function gatewayRequest(
  endpoint: Endpoint<GatewayLink>,
  method: 'GET' | 'POST',
  path: string,
  body: string | undefined,
  token: string | undefined,
  write: boolean,
  scope: CallScope,
): Promise<Json> {
  if (scope.aborted) return Promise.reject(scope.reason);
  const request = new GatewayRequest(endpoint.url, path, write, scope);
  scope.inFlight = request;
  endpoint.link.pool.dispatch(
    { method, path, body: body ?? null, headers: headersFor(token) },
    request,
  );
  return request.promise;
}

class GatewayRequest implements Dispatcher.DispatchHandler {
  readonly promise: Promise<Json>;
  #resolve!: (json: Json) => void;
  #reject!: (error: unknown) => void;
  #settled = false;
  /** Aborts the request once undici has started it. */
  #abort: ((err?: Error) => void) | undefined;
  #status = 0;
  #chunks: Buffer[] = [];

  constructor(
    readonly url: string,
    readonly path: string,
    readonly write: boolean,
    readonly scope: CallScope,
  ) {
    this.promise = new Promise<Json>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Settles the request with `reason` now and stops it, whether or not it has started. */
  abort(reason: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(reason);
    this.#abort?.(STOPPED);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#settled) {
      abort(STOPPED);
      return;
    }
    this.#abort = abort;
    // A write is in doubt once it is handed to the connection, not while it waits for one.
    if (this.write) this.scope.inDoubt = true;
    // A request undici sends again starts over.
    this.#status = 0;
    this.#chunks = [];
  }

  onHeaders(statusCode: number): boolean {
    this.#status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#settled) return;
    const chunks = this.#chunks;
    this.#settle();
    const text =
      chunks.length === 1
        ? chunks[0]!.toString('utf8')
        : chunks.length === 0
          ? ''
          : Buffer.concat(chunks).toString('utf8');
    let json: Json;
    try {
      json = answer(this.url, this.path, this.#status, text, this.write);
    } catch (err) {
      this.#reject(err);
      return;
    }
    this.#resolve(json);
  }

  onError(error: Error): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    this.#settled = true;
    this.#chunks = [];
    if (this.scope.inFlight === this) this.scope.inFlight = undefined;
  }
}

/** etcd's answer to `path` as JSON, or the error it stands for. */
function answer(url: string, path: string, status: number, text: string, write: boolean): Json {
  const parsed = parseJson(text);
  if (status >= 500 && !isGatewayError(parsed)) {
    throw ErrorPage.from(url, path, status, text, write);
  }
  if (parsed === undefined) {
    throw new ProtocolError(
      `${url}${path} answered ${status} with non-JSON: ${text.slice(0, 200)}`,
    );
  }
  const json = asObject(parsed, 'response');
  if (status !== 200) {
    const code = typeof json.code === 'number' ? json.code : 2;
    throw fromGatewayError(code, str(json.message ?? json.error, 'message'), {
      write,
      httpStatus: status,
    });
  }
  return json;
}

/**
 * A 5xx answer that is not etcd's: a proxy's page for a member it could not
 * reach. 503 means the proxy found no upstream and never forwarded the request;
 * after a 502 or 504 a write may have reached etcd.
 */
export class ErrorPage extends EndpointUnreachable {
  static from(url: string, path: string, status: number, text: string, write: boolean): ErrorPage {
    const indeterminate = write && status !== 503;
    return new ErrorPage(
      `${url}${path} answered ${status} with a page that is not etcd's: ${text.slice(0, 200)}` +
        (indeterminate ? '; the write may or may not have been applied' : ''),
      { indeterminate },
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** etcd's gateway reports every error as `{ error, code, message }` with a numeric gRPC code. */
function isGatewayError(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { code?: unknown }).code === 'number'
  );
}
