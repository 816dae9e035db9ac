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
import { CallScope, DEADLINE } from './call-scope.js';
import { Deadlines } from './deadlines.js';
import { type Endpoint, EndpointSet } from './endpoints.js';
import {
  AuthenticationError,
  ClientClosedError,
  EtcdError,
  InvalidArgumentError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { ErrorPage, gatewayRequest, headersFor } from './gateway-request.js';
import { type Json, str } from './wire.js';

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

/** `#tokenNow()`'s answer when a token must be fetched first. */
const FETCH = Symbol('fetch');

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
  /** The deadlines of the calls in flight, on one timer. */
  readonly #deadlines = new Deadlines();
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
    return this.#withDeadline(options, (scope) => untilAborted(this.#detect(), scope.signal));
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
    const now = this.#tokenNow();
    const auth = this.#auth;
    if (now !== FETCH || !auth) return now === FETCH ? undefined : now;
    this.#authenticating ??= this.#withDeadline({}, async (scope) => {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), scope.signal));
      const body = JSON.stringify({ name: auth.user, password: auth.password });
      const res = await this.#attempt(
        'POST',
        `${prefix}/auth/authenticate`,
        body,
        scope,
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

  /** The token to send when it needs no fetching (undefined: no auth), else `FETCH`. */
  #tokenNow(): string | undefined | typeof FETCH {
    const auth = this.#auth;
    if (!auth) return undefined;
    const token = this.#token;
    const maxAge = auth.refreshInterval ?? DEFAULT_TOKEN_REFRESH_MS;
    return token && performance.now() - token.at < maxAge ? token.value : FETCH;
  }

  /** The token for a request of `scope`, fetched first if needed. */
  #tokenFor(scope: CallScope): string | undefined | Promise<string | undefined> {
    const now = this.#tokenNow();
    return now === FETCH ? this.#ensureToken(scope.signal) : now;
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
    const scope = this.#open(undefined, ms);
    try {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), scope.signal));
      const token = await this.#tokenFor(scope);
      const path = `${prefix}/maintenance/status`;
      return await gatewayRequest(endpoint, 'POST', path, '{}', token, false, scope);
    } catch (err) {
      if (scope.aborted) throw new TimeoutError(`${url} did not answer within ${ms} ms`);
      throw err;
    } finally {
      this.#end(scope);
    }
  }

  /** `GET path` (outside the API prefix), e.g. `/version`. */
  get(path: string, options: CallOptions = {}): Promise<Json> {
    if (this.#closing) return Promise.reject(new ClientClosedError('the client is closed'));
    return this.#withDeadline(options, (scope) =>
      this.#attempt('GET', path, undefined, scope, false, undefined),
    );
  }

  /**
   * Calls `<apiPrefix>/<method>` with a JSON body. `write` marks state changes.
   *
   * The common case, a first attempt that succeeds once the API prefix is known
   * and the token fresh, is one request and one settled promise: no timer,
   * no AbortController, no retry machinery. Anything else (detection, a token
   * to fetch, failure) goes on in the async steps below.
   */
  call(method: string, body: Json, options: CallOptions, write: boolean): Promise<Json> {
    if (this.#closing && method !== 'lease/revoke') {
      return Promise.reject(new ClientClosedError('the client is closed'));
    }
    let scope: CallScope;
    try {
      scope = this.#begin(options);
    } catch (err) {
      return Promise.reject(err);
    }
    let text: string;
    try {
      text = JSON.stringify(body);
    } catch (err) {
      return Promise.reject(this.#failed(scope, err));
    }
    const prefix = this.#apiPrefix;
    const token = this.#tokenNow();
    if (prefix === undefined || token === FETCH)
      return this.#callSlowly(scope, method, text, write);
    const path = `${prefix}/${method}`;
    return this.#attempt('POST', path, text, scope, write, token).then(
      (result) => this.#succeeded(scope, result),
      (err) => this.#recover(err, scope, path, text, write, token),
    );
  }

  /** A call that must first learn the API prefix or fetch a token. */
  async #callSlowly(scope: CallScope, method: string, text: string, write: boolean): Promise<Json> {
    let path: string;
    try {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), scope.signal));
      path = `${prefix}/${method}`;
    } catch (err) {
      throw this.#failed(scope, err);
    }
    let result: Json;
    try {
      result = await this.#once(path, text, scope, write);
    } catch (err) {
      return this.#retry(err, scope, path, text, write);
    }
    return this.#succeeded(scope, result);
  }

  /** After a first attempt failed: a refused token is fetched anew once, then retries follow if allowed. */
  async #recover(
    err: unknown,
    scope: CallScope,
    path: string,
    text: string,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    if (!refusedToken(err)) return this.#retry(err, scope, path, text, write);
    let result: Json;
    try {
      this.#invalidate(token);
      const fresh = await this.#tokenFor(scope);
      result = await this.#attempt('POST', path, text, scope, write, fresh);
    } catch (error) {
      return this.#retry(error, scope, path, text, write);
    }
    return this.#succeeded(scope, result);
  }

  /** One attempt of a call: a token first if needed, and a fresh one once if etcd refused it. */
  async #once(path: string, text: string, scope: CallScope, write: boolean): Promise<Json> {
    const token = await this.#tokenFor(scope);
    try {
      return await this.#attempt('POST', path, text, scope, write, token);
    } catch (err) {
      // An expired token is refused before anything is applied: fetch a new one, once.
      if (!refusedToken(err)) throw err;
      this.#invalidate(token);
      return this.#attempt('POST', path, text, scope, write, await this.#tokenFor(scope));
    }
  }

  /**
   * Retries what is safe to retry (reads; writes that provably never left), with
   * backoff, within the deadline and the retry budget; else the call fails with `err`.
   */
  async #retry(
    err: unknown,
    scope: CallScope,
    path: string,
    text: string,
    write: boolean,
  ): Promise<Json> {
    let result: Json;
    try {
      if (!this.#retryable(err)) throw err;
      const { signal } = scope;
      await sleep(RETRY_MIN_MS, undefined, { signal });
      result = await pRetry(() => this.#once(path, text, scope, write), {
        retries: MAX_RETRIES - 1,
        minTimeout: RETRY_MIN_MS,
        maxTimeout: 1_000,
        randomize: true,
        signal,
        shouldRetry: ({ error }) => this.#retryable(error),
      });
    } catch (error) {
      throw this.#failed(scope, error);
    }
    return this.#succeeded(scope, result);
  }

  #retryable(error: unknown): boolean {
    return error instanceof EtcdError && error.retryable && this.#budget.spend();
  }

  /** Runs `work` within a call's scope: its deadline and its caller's signal. */
  async #withDeadline<T>(options: CallOptions, work: (scope: CallScope) => Promise<T>): Promise<T> {
    const scope = this.#begin(options);
    let result: T;
    try {
      result = await work(scope);
    } catch (err) {
      throw this.#failed(scope, err);
    }
    this.#end(scope);
    return result;
  }

  /** Starts a call's scope from its options; throws when the call cannot start. */
  #begin(options: CallOptions): CallScope {
    if (this.#closed) throw new ClientClosedError('the client is closed');
    const { signal } = options;
    signal?.throwIfAborted();
    const timeout = options.timeout ?? this.#timeout;
    if (!(Number.isFinite(timeout) && timeout >= 0)) {
      throw new InvalidArgumentError(`timeout must be a number of ms >= 0, got ${timeout}`);
    }
    return this.#open(signal, timeout);
  }

  /** A scope that ends at `signal` or after `timeout` ms (0: no deadline). */
  #open(signal: AbortSignal | undefined, timeout: number): CallScope {
    const scope = new CallScope(signal, timeout);
    if (timeout > 0) {
      scope.expiresAt = performance.now() + timeout;
      this.#deadlines.add(scope);
    }
    signal?.addEventListener('abort', scope, { once: true });
    return scope;
  }

  #end(scope: CallScope): void {
    if (scope.timeout > 0) this.#deadlines.delete(scope);
    scope.callerSignal?.removeEventListener('abort', scope);
  }

  #succeeded(scope: CallScope, result: Json): Json {
    this.#end(scope);
    this.#budget.earn();
    return result;
  }

  /**
   * Ends a call that failed with `err` and says what it rejects with: an abort
   * becomes the caller's reason or a TimeoutError.
   */
  #failed(scope: CallScope, err: unknown): unknown {
    this.#end(scope);
    if (!scope.aborted || (err instanceof EtcdError && !(err instanceof Aborted))) return err;
    if (scope.callerSignal?.aborted) return scope.callerSignal.reason;
    if (scope.timedOut) {
      const { inDoubt: indeterminate } = scope;
      return new TimeoutError(
        `no answer within ${scope.timeout} ms` +
          (indeterminate ? '; the write may or may not have been applied' : ''),
        { indeterminate },
      );
    }
    return err;
  }

  /**
   * Sends one request, moving on to the next endpoint when the current one fails:
   * always for a read; for a write only when it provably never left.
   */
  #attempt(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    scope: CallScope,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    const { list } = this.endpointSet;
    // One endpoint is tried whether it is up or down: no need to order them.
    const endpoints = list.length === 1 ? list : this.endpointSet.order();
    const first = endpoints[0]!;
    return gatewayRequest(first, method, path, body, token, write, scope).then(
      (result) => {
        this.endpointSet.succeeded(first);
        return result;
      },
      async (err: unknown) => {
        let lastError = this.#afterFailure(err, first, scope, write);
        for (const endpoint of endpoints.slice(1)) {
          try {
            const result = await gatewayRequest(endpoint, method, path, body, token, write, scope);
            this.endpointSet.succeeded(endpoint);
            return result;
          } catch (error) {
            lastError = this.#afterFailure(error, endpoint, scope, write);
          }
        }
        throw new UnavailableError(
          `no endpoint could be reached (${this.endpoints.join(', ')}): ${describe(lastError)}`,
          { cause: lastError },
        );
      },
    );
  }

  /**
   * Judges a failed request on `endpoint`: throws when the call must stop here,
   * returns the error when the next endpoint may be tried.
   */
  #afterFailure(err: unknown, endpoint: Endpoint, scope: CallScope, write: boolean): unknown {
    if (scope.aborted) {
      // A member that let the deadline pass is avoided by the next calls.
      if (scope.reason === DEADLINE) {
        this.endpointSet.failed(endpoint, new TimeoutError('deadline passed'));
      }
      throw err;
    }
    if (err instanceof UnavailableError && (!err.indeterminate || err instanceof ErrorPage)) {
      // etcd refused it (no leader, not ready) or a proxy answered for a dead
      // member: avoid this one, and try the next unless the write may have left.
      this.endpointSet.failed(endpoint, err);
      if (err.indeterminate) throw err;
      return err;
    }
    if (err instanceof EtcdError) throw err;
    this.endpointSet.failed(endpoint, err as Error);
    if (write && !NEVER_SENT.has(errorCode(err))) {
      throw new UnavailableError(`${endpoint.url}: ${describe(err)}`, {
        cause: err,
        indeterminate: true,
      });
    }
    return err;
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
    this.#deadlines.clear();
  }
}

/** Marks a wait that ended because its signal aborted. */
class Aborted extends EtcdError {}

/** etcd refused the call's token as expired or unknown: nothing was applied. */
function refusedToken(err: unknown): boolean {
  return err instanceof AuthenticationError && err.message.includes('invalid auth token');
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
