/**
 * HTTP transport to etcd's JSON gateway.
 *
 * How it works: one undici Pool per endpoint keeps HTTP/1.1 connections alive.
 * A call is `POST <apiPrefix>/<service>/<method>` with a JSON body. Each call has
 * one deadline (its `timeout`) and an optional AbortSignal; whichever fires
 * first ends it. The API prefix is read once from `GET /version` unless given.
 * When an endpoint refuses the connection the call moves on to the next one,
 * since such a request provably never reached etcd. Any other transport
 * failure of a write is reported as indeterminate: it may have been applied.
 * A 5xx page that is not etcd's (a proxy in front of a dead member) marks the
 * endpoint down like a refused connection; a write moves on only after a 503.
 */

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import type { Pool } from 'undici';
import { untilAborted as waitUntilAborted } from './abort.js';
import { type Endpoint, EndpointSet } from './endpoints.js';
import {
  AuthenticationError,
  ClientClosedError,
  EtcdError,
  fromGatewayError,
  InvalidArgumentError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { asObject, type Json, str } from './wire.js';

export interface TlsOptions {
  /** Certificate authorities to trust, PEM. */
  ca?: string | Buffer | Array<string | Buffer> | undefined;
  /** Client certificate for `--client-cert-auth`, PEM. */
  cert?: string | Buffer | undefined;
  /** Private key of the client certificate, PEM. */
  key?: string | Buffer | undefined;
  /** Server name to verify, when it differs from the endpoint's host. */
  servername?: string | undefined;
  /** Verify the server certificate. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean | undefined;
}

export interface CallOptions {
  /** Abort the call; it rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Deadline in milliseconds; 0 disables it. Defaults to the client's `timeout`. */
  timeout?: number | undefined;
}

export interface AuthOptions {
  user: string;
  password: string;
  /** Fetch a new token after this many ms, before etcd's token TTL (300 s by default) ends. Default 240,000. */
  refreshInterval?: number | undefined;
}

export interface TransportOptions {
  endpoints: string[];
  timeout: number;
  apiPrefix: string | undefined;
  tls: TlsOptions | undefined;
  connections: number;
  auth: AuthOptions | undefined;
}

export const DEFAULT_TOKEN_REFRESH_MS = 240_000;

/** Connection-level error codes that prove the request was never sent. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN']);
const HEADERS = { 'content-type': 'application/json' };
const NOT_SENT = () => false;
/** The abort reason of a call whose deadline passed. */
const DEADLINE = Symbol('deadline');

/** Retries before a call gives up (each also bounded by the deadline). */
const MAX_RETRIES = 4;
const RETRY_MIN_MS = 25;

/**
 * Retries cost a token; successful calls earn a tenth of one back. A cluster
 * that keeps failing drains the budget, and calls then fail at once instead of
 * multiplying the load on it.
 */
class RetryBudget {
  static readonly MAX = 20;
  #tokens = RetryBudget.MAX;

  spend(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  earn(): void {
    this.#tokens = Math.min(RetryBudget.MAX, this.#tokens + 0.1);
  }
}

function headersFor(token: string | undefined): Record<string, string> {
  return token === undefined ? HEADERS : { ...HEADERS, authorization: token };
}

/** Maps `GET /version`'s server version to the gateway's path prefix. */
export function apiPrefixFor(serverVersion: string): string {
  const match = /^(\d+)\.(\d+)/.exec(serverVersion);
  if (!match) throw new ProtocolError(`unrecognised etcd version ${JSON.stringify(serverVersion)}`);
  const major = Number(match[1]);
  const minor = Number(match[2]);
  if (major !== 3 || minor < 2) {
    throw new ProtocolError(`etcd ${serverVersion} has no v3 JSON gateway this client supports`);
  }
  if (minor === 2) return '/v3alpha';
  if (minor === 3) return '/v3beta';
  return '/v3';
}

export class Transport {
  /** Endpoints and their health; `on('endpoint-down' | 'endpoint-up')` reports changes. */
  readonly endpointSet: EndpointSet;
  readonly #timeout: number;
  readonly #tls: TlsOptions | undefined;
  readonly #auth: AuthOptions | undefined;
  #token: { value: string; at: number } | undefined;
  readonly #budget = new RetryBudget();
  #authenticating: Promise<string> | undefined;
  #apiPrefix: string | undefined;
  #detecting: Promise<string> | undefined;
  #closed = false;
  /** Closing: only lease revokes (a closing client's sessions) may still go out. */
  #closing = false;

  constructor(options: TransportOptions) {
    this.#timeout = options.timeout;
    this.#tls = options.tls;
    this.#auth = options.auth;
    this.#apiPrefix = options.apiPrefix;
    this.endpointSet = new EndpointSet(options.endpoints, options.connections, options.tls);
  }

  get endpoints(): string[] {
    return this.endpointSet.list.map((e) => e.url);
  }

  /**
   * The API prefix in use, detecting it first if needed. Detection is shared by
   * concurrent callers and runs under the client's own deadline; each caller
   * only stops waiting for it on its own signal.
   */
  async apiPrefix(options: CallOptions = {}): Promise<string> {
    if (this.#apiPrefix !== undefined) return this.#apiPrefix;
    return this.#withDeadline(options, NOT_SENT, (signal) => untilAborted(this.#detect(), signal));
  }

  #detect(): Promise<string> {
    this.#detecting ??= this.get('/version', {})
      .then((body) => {
        this.#apiPrefix = apiPrefixFor(str(body.etcdserver, 'etcdserver'));
        return this.#apiPrefix;
      })
      .finally(() => {
        this.#detecting = undefined;
      });
    return this.#detecting;
  }

  /** The endpoint calls go to first: the last one that answered. */
  get currentEndpoint(): string {
    return this.endpointSet.current.url;
  }

  /** Moves streams and calls on to the next endpoint after `url` failed. */
  rotateFrom(url: string, error: Error = new UnavailableError(`${url} failed`)): void {
    this.endpointSet.failed(url, error);
  }

  /** The TLS settings, for streams that open their own connections. */
  get tls(): TlsOptions | undefined {
    return this.#tls;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The client's deadline for each call in ms (0: none). */
  get timeout(): number {
    return this.#timeout;
  }

  /** Calls carry an auth token. etcd's WebSocket proxy cannot pass one on, so streams use HTTP. */
  get authenticated(): boolean {
    return this.#auth !== undefined;
  }

  /**
   * A valid token, fetched once for all concurrent callers and again when it
   * is older than the refresh interval or etcd called it invalid.
   */
  async #ensureToken(signal: AbortSignal): Promise<string | undefined> {
    const auth = this.#auth;
    if (!auth) return undefined;
    const token = this.#token;
    const maxAge = auth.refreshInterval ?? DEFAULT_TOKEN_REFRESH_MS;
    if (token && performance.now() - token.at < maxAge) return token.value;
    this.#authenticating ??= this.#withDeadline({}, NOT_SENT, async (deadline) => {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), deadline));
      const body = JSON.stringify({ name: auth.user, password: auth.password });
      const res = await this.#attempt(
        'POST',
        `${prefix}/auth/authenticate`,
        body,
        deadline,
        false,
        undefined,
      );
      const value = str(res.token, 'token');
      if (!value) throw new ProtocolError('etcd answered authenticate without a token');
      this.#token = { value, at: performance.now() };
      return value;
    }).finally(() => {
      this.#authenticating = undefined;
    });
    return untilAborted(this.#authenticating, signal);
  }

  /** etcd called the current token invalid somewhere a call cannot retry (a stream): drop it. */
  tokenRefused(): void {
    this.#token = undefined;
  }

  /** Forgets `token` after etcd refused it, unless a newer one replaced it already. */
  #invalidate(token: string | undefined): void {
    if (token !== undefined && this.#token?.value === token) this.#token = undefined;
  }

  /**
   * Opens a streaming `POST <apiPrefix>/<method>` on the current endpoint and
   * returns its body. No body timeout: the stream's owner watches for stalls.
   */
  async stream(
    method: string,
    body: Json,
    signal: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ body: AsyncIterable<Buffer>; url: string }> {
    if (this.#closing) throw new ClientClosedError('the client is closed');
    const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), signal));
    const token = await this.#ensureToken(signal);
    const endpoint = this.endpointSet.current;
    try {
      const res = await endpoint.streams.request({
        method: 'POST',
        path: `${prefix}/${method}`,
        body: JSON.stringify(body),
        headers: { ...headersFor(token), ...extraHeaders },
        signal,
        bodyTimeout: 0,
        headersTimeout: this.#timeout || undefined,
      } as Parameters<Pool['request']>[0]);
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        if (res.statusCode === 401 || text.includes('invalid auth token')) this.#invalidate(token);
        throw new UnavailableError(
          `${endpoint.url} answered ${res.statusCode}: ${text.slice(0, 200)}`,
        );
      }
      return { body: res.body, url: endpoint.url };
    } catch (err) {
      if (err instanceof EtcdError || signal.aborted) throw err;
      this.endpointSet.failed(endpoint, err as Error);
      // Typed as a read's failure would be: the stream could not be opened there.
      throw new UnavailableError(`${endpoint.url}: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Whether the member at `url` reports a raft leader. Only an explicit "no
   * leader" answer is false; an unreachable member is the stream's own concern.
   */
  async hasLeader(url: string): Promise<boolean> {
    try {
      const status = await this.#status(url, this.#timeout || 5_000);
      if (status === undefined) return true;
      const leader = str(status.leader, 'leader');
      return leader !== '' && leader !== '0';
    } catch (err) {
      return !(err instanceof EtcdError && err.message.includes('no leader'));
    }
  }

  /**
   * Whether the member at `url` answers at all within `ms`: a stopped or
   * black-holed member does not. Any answer, even an error, counts as alive.
   */
  async answers(url: string, ms: number): Promise<boolean> {
    try {
      await this.#status(url, ms);
      return true;
    } catch (err) {
      return err instanceof EtcdError && !(err instanceof TimeoutError);
    }
  }

  /** The member's `maintenance/status`, within `ms`; undefined for an unknown endpoint. */
  async #status(url: string, ms: number): Promise<Json | undefined> {
    const endpoint = this.endpointSet.list.find((e) => e.url === url);
    if (!endpoint || this.#closing) return undefined;
    const signal = AbortSignal.timeout(ms);
    try {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), signal));
      const token = await this.#ensureToken(signal);
      return await this.#request(
        endpoint,
        'POST',
        `${prefix}/maintenance/status`,
        '{}',
        signal,
        false,
        token,
      );
    } catch (err) {
      if (signal.aborted) throw new TimeoutError(`${url} did not answer within ${ms} ms`);
      throw err;
    }
  }

  /** `GET path` (outside the API prefix), e.g. `/version`. */
  get(path: string, options: CallOptions = {}): Promise<Json> {
    if (this.#closing) return Promise.reject(new ClientClosedError('the client is closed'));
    return this.#withDeadline(options, NOT_SENT, (signal) =>
      this.#attempt('GET', path, undefined, signal, false, undefined),
    );
  }

  /** Calls `<apiPrefix>/<method>` with a JSON body. `write` marks state changes. */
  call(method: string, body: Json, options: CallOptions, write: boolean): Promise<Json> {
    if (this.#closing && method !== 'lease/revoke') {
      return Promise.reject(new ClientClosedError('the client is closed'));
    }
    // A write is in doubt only once it has been handed to the connection.
    let sent = false;
    return this.#withDeadline(
      options,
      () => write && sent,
      async (signal) => {
        const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), signal));
        const path = `${prefix}/${method}`;
        const text = JSON.stringify(body);
        const once = async () => {
          const token = await this.#ensureToken(signal);
          sent = true;
          try {
            return await this.#attempt('POST', path, text, signal, write, token);
          } catch (err) {
            // An expired token is refused before anything is applied: fetch a new one, once.
            if (
              !(err instanceof AuthenticationError) ||
              !err.message.includes('invalid auth token')
            ) {
              throw err;
            }
            this.#invalidate(token);
            return this.#attempt(
              'POST',
              path,
              text,
              signal,
              write,
              await this.#ensureToken(signal),
            );
          }
        };
        const retryable = (error: unknown) =>
          error instanceof EtcdError && error.retryable && this.#budget.spend();
        let result: Json;
        try {
          // The common case, a first attempt that succeeds, pays nothing for retries.
          result = await once();
        } catch (err) {
          if (!retryable(err)) throw err;
          // Retry what is safe to retry (reads; writes that provably never left), with
          // backoff, within the deadline and the retry budget.
          await sleep(RETRY_MIN_MS, undefined, { signal });
          result = await pRetry(once, {
            retries: MAX_RETRIES - 1,
            minTimeout: RETRY_MIN_MS,
            maxTimeout: 1_000,
            randomize: true,
            signal,
            shouldRetry: ({ error }) => retryable(error),
          });
        }
        this.#budget.earn();
        return result;
      },
    );
  }

  /**
   * Runs `work` under one signal that carries both the caller's signal and the
   * deadline, and turns an abort into the caller's reason or a TimeoutError.
   */
  async #withDeadline<T>(
    options: CallOptions,
    inDoubt: () => boolean,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) throw new ClientClosedError('the client is closed');
    const { signal } = options;
    signal?.throwIfAborted();
    const timeout = options.timeout ?? this.#timeout;
    if (!(Number.isFinite(timeout) && timeout >= 0)) {
      throw new InvalidArgumentError(`timeout must be a number of ms >= 0, got ${timeout}`);
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer =
      timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort(DEADLINE);
          }, timeout)
        : undefined;
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await work(controller.signal);
    } catch (err) {
      if (!controller.signal.aborted || (err instanceof EtcdError && !(err instanceof Aborted))) {
        throw err;
      }
      if (signal?.aborted) throw signal.reason;
      if (timedOut) {
        const indeterminate = inDoubt();
        throw new TimeoutError(
          `no answer within ${timeout} ms` +
            (indeterminate ? '; the write may or may not have been applied' : ''),
          { indeterminate },
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Sends one request, moving on to the next endpoint when the current one fails:
   * always for a read; for a write only when it provably never left.
   */
  async #attempt(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal: AbortSignal,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    let lastError: unknown;
    for (const endpoint of this.endpointSet.order()) {
      try {
        const result = await this.#request(endpoint, method, path, body, signal, write, token);
        this.endpointSet.succeeded(endpoint);
        return result;
      } catch (err) {
        if (signal.aborted) {
          // A member that let the deadline pass is avoided by the next calls.
          if (signal.reason === DEADLINE)
            this.endpointSet.failed(endpoint, new TimeoutError('deadline passed'));
          throw err;
        }
        if (err instanceof UnavailableError && (!err.indeterminate || err instanceof ErrorPage)) {
          // etcd refused it (no leader, not ready) or a proxy answered for a dead
          // member: avoid this one, and try the next unless the write may have left.
          this.endpointSet.failed(endpoint, err);
          lastError = err;
          if (err.indeterminate) throw err;
          continue;
        }
        if (err instanceof EtcdError) throw err;
        lastError = err;
        this.endpointSet.failed(endpoint, err as Error);
        if (write && !NEVER_SENT.has(errorCode(err))) {
          throw new UnavailableError(`${endpoint.url}: ${describe(err)}`, {
            cause: err,
            indeterminate: true,
          });
        }
      }
    }
    throw new UnavailableError(
      `no endpoint could be reached (${this.endpoints.join(', ')}): ${describe(lastError)}`,
      { cause: lastError },
    );
  }

  async #request(
    endpoint: Endpoint,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal: AbortSignal,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    const res = await endpoint.pool.request({
      method,
      path,
      body: body ?? null,
      headers: headersFor(token),
      signal,
    });
    const text = await res.body.text();
    const parsed = parseJson(text);
    if (res.statusCode >= 500 && !isGatewayError(parsed)) {
      throw ErrorPage.from(endpoint.url, path, res.statusCode, text, write);
    }
    if (parsed === undefined) {
      throw new ProtocolError(
        `${endpoint.url}${path} answered ${res.statusCode} with non-JSON: ${text.slice(0, 200)}`,
      );
    }
    const json = asObject(parsed, 'response');
    if (res.statusCode !== 200) {
      const code = typeof json.code === 'number' ? json.code : 2;
      throw fromGatewayError(code, str(json.message ?? json.error, 'message'), {
        write,
        httpStatus: res.statusCode,
      });
    }
    return json;
  }

  /** New calls, streams and probes are refused from now on, except lease revokes. */
  beginClose(): void {
    this.#closing = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#closed = true;
    await this.endpointSet.close();
  }
}

/** Marks a wait that ended because its signal aborted. */
class Aborted extends EtcdError {}

/**
 * A 5xx answer that is not etcd's: a proxy's page for a member it could not
 * reach. 503 means the proxy found no upstream and never forwarded the request;
 * after a 502 or 504 a write may have reached etcd.
 */
class ErrorPage extends UnavailableError {
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

/** Waits for `promise` until `signal` aborts, then rejects with the `Aborted` marker. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return waitUntilAborted(promise, signal, () => new Aborted('aborted'));
}

function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // undici wraps connect failures; the system error is the cause.
  return errorCode((err as { cause?: unknown }).cause);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
