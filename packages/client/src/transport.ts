/**
 * HTTP transport to etcd's JSON gateway.
 *
 * How it works: one undici Pool per endpoint keeps HTTP/1.1 connections alive.
 * A call is `POST <apiPrefix>/<service>/<method>` with a JSON body. Each call has
 * one deadline (its `timeout`) and an optional AbortSignal; whichever fires
 * first ends it. The deadlines of all calls share one timer (`CallScopes`), and
 * a call makes no AbortController unless it has to wait for something that
 * takes a signal: the common call is one request (`gatewayRequest`) and one
 * settled promise. The API prefix is read once from `GET /version` unless given.
 * When an endpoint refuses the connection the call moves on to the next one,
 * since such a request provably never reached etcd. Any other transport
 * failure of a write is reported as indeterminate: it may have been applied.
 * A 5xx page that is not etcd's (a proxy in front of a dead member) marks the
 * endpoint down like a refused connection; a write moves on only after a 503.
 */

import type { Pool } from 'undici';
import { untilAborted } from './aborted.js';
import { apiPrefixFor } from './api-prefix.js';
import { AuthToken, FETCH } from './auth-token.js';
import type { CallScope } from './call-scope.js';
import { CallScopes } from './call-scopes.js';
import { describeError } from './describe-error.js';
import { EndpointSet } from './endpoints.js';
import {
  AuthenticationError,
  ClientClosedError,
  EtcdError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { sendWithFailover } from './failover.js';
import { gatewayRequest, headersFor } from './gateway-request.js';
import { Retries } from './retries.js';
import type {
  AuthOptions,
  CallOptions,
  TlsOptions,
  TransportOptions,
} from './transport-options.js';
import { type Json, str } from './wire.js';

export { DEFAULT_TOKEN_REFRESH_MS } from './auth-token.js';
export type {
  AuthOptions,
  CallOptions,
  TlsOptions,
  TransportOptions,
} from './transport-options.js';

export class Transport {
  /** Endpoints and their health; `on('endpoint-down' | 'endpoint-up')` reports changes. */
  readonly endpointSet: EndpointSet;
  readonly #timeout: number;
  readonly #tls: TlsOptions | undefined;
  /** The auth token, when the client authenticates. */
  readonly #token: AuthToken | undefined;
  readonly #retries = new Retries();
  #apiPrefix: string | undefined;
  #detecting: Promise<string> | undefined;
  readonly #scopes = new CallScopes();
  #closed = false;
  /** Closing: only lease revokes (a closing client's sessions) may still go out. */
  #closing = false;

  constructor(options: TransportOptions) {
    this.#timeout = options.timeout;
    this.#tls = options.tls;
    const { auth } = options;
    this.#token = auth && new AuthToken(auth, () => this.#authenticate(auth));
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
    return this.#token !== undefined;
  }

  /**
   * The token to send (undefined without auth), fetched first if needed while
   * `waiter.signal` allows: a call's scope makes that signal only then.
   */
  #tokenFor(waiter: { readonly signal: AbortSignal }): string | undefined | Promise<string> {
    const token = this.#token;
    const now = token?.now();
    return now === FETCH ? untilAborted(token!.fetch(), waiter.signal) : now;
  }

  /** Asks etcd for a token, under the client's own deadline. */
  #authenticate(auth: AuthOptions): Promise<string> {
    return this.#withDeadline({}, async (scope) => {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), scope.signal));
      const body = JSON.stringify({ name: auth.user, password: auth.password });
      const path = `${prefix}/auth/authenticate`;
      const res = await sendWithFailover(
        this.endpointSet,
        'POST',
        path,
        body,
        scope,
        false,
        undefined,
      );
      const value = str(res.token, 'token');
      if (!value) throw new ProtocolError('etcd answered authenticate without a token');
      return value;
    });
  }

  /** etcd called the current token invalid somewhere a call cannot retry (a stream): drop it. */
  tokenRefused(): void {
    this.#token?.drop();
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
    const token = await this.#tokenFor({ signal });
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
        if (res.statusCode === 401 || text.includes('invalid auth token')) {
          this.#token?.invalidate(token);
        }
        throw new UnavailableError(
          `${endpoint.url} answered ${res.statusCode}: ${text.slice(0, 200)}`,
        );
      }
      return { body: res.body, url: endpoint.url };
    } catch (err) {
      if (err instanceof EtcdError || signal.aborted) throw err;
      this.endpointSet.failed(endpoint, err as Error);
      // Typed as a read's failure would be: the stream could not be opened there.
      throw new UnavailableError(`${endpoint.url}: ${describeError(err)}`, { cause: err });
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
    const scope = this.#scopes.open(undefined, ms);
    try {
      const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), scope.signal));
      const token = await this.#tokenFor(scope);
      const path = `${prefix}/maintenance/status`;
      return await gatewayRequest(endpoint, 'POST', path, '{}', token, false, scope);
    } catch (err) {
      if (scope.aborted) throw new TimeoutError(`${url} did not answer within ${ms} ms`);
      throw err;
    } finally {
      this.#scopes.end(scope);
    }
  }

  /** `GET path` (outside the API prefix), e.g. `/version`. */
  get(path: string, options: CallOptions = {}): Promise<Json> {
    if (this.#closing) return Promise.reject(new ClientClosedError('the client is closed'));
    return this.#withDeadline(options, (scope) =>
      sendWithFailover(this.endpointSet, 'GET', path, undefined, scope, false, undefined),
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
      return Promise.reject(this.#scopes.failed(scope, err));
    }
    const prefix = this.#apiPrefix;
    const token = this.#token?.now();
    if (prefix === undefined || token === FETCH)
      return this.#callSlowly(scope, method, text, write);
    const path = `${prefix}/${method}`;
    return sendWithFailover(this.endpointSet, 'POST', path, text, scope, write, token).then(
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
      throw this.#scopes.failed(scope, err);
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
    let result: Json;
    try {
      if (!refusedToken(err)) throw err;
      result = await this.#withFreshToken(path, text, scope, write, token);
    } catch (error) {
      return this.#retry(error, scope, path, text, write);
    }
    return this.#succeeded(scope, result);
  }

  /** One attempt of a call: a token first if needed, and a fresh one once if etcd refused it. */
  async #once(path: string, text: string, scope: CallScope, write: boolean): Promise<Json> {
    const token = await this.#tokenFor(scope);
    try {
      return await sendWithFailover(this.endpointSet, 'POST', path, text, scope, write, token);
    } catch (err) {
      if (!refusedToken(err)) throw err;
      return this.#withFreshToken(path, text, scope, write, token);
    }
  }

  /** An expired token is refused before anything is applied: sends again with a new one. */
  async #withFreshToken(
    path: string,
    text: string,
    scope: CallScope,
    write: boolean,
    refused: string | undefined,
  ): Promise<Json> {
    this.#token?.invalidate(refused);
    const token = await this.#tokenFor(scope);
    return sendWithFailover(this.endpointSet, 'POST', path, text, scope, write, token);
  }

  /** Retries the call if it may (within its deadline and the budget); else it fails with `err`. */
  async #retry(
    err: unknown,
    scope: CallScope,
    path: string,
    text: string,
    write: boolean,
  ): Promise<Json> {
    let result: Json;
    try {
      // An aborted call is over, whatever its error says: nothing to retry, no budget spent.
      if (scope.aborted) throw err;
      const once = () => this.#once(path, text, scope, write);
      result = await this.#retries.retry(err, once, scope.signal);
    } catch (error) {
      throw this.#scopes.failed(scope, this.#closing && !scope.aborted ? cutByClose(error) : error);
    }
    return this.#succeeded(scope, result);
  }

  /** Runs `work` within a call's scope: its deadline and its caller's signal. */
  async #withDeadline<T>(options: CallOptions, work: (scope: CallScope) => Promise<T>): Promise<T> {
    const scope = this.#begin(options);
    let result: T;
    try {
      result = await work(scope);
    } catch (err) {
      throw this.#scopes.failed(scope, err);
    }
    this.#scopes.end(scope);
    return result;
  }

  /** Starts a call's scope from its options; throws when the call cannot start. */
  #begin(options: CallOptions): CallScope {
    if (this.#closed) throw new ClientClosedError('the client is closed');
    return this.#scopes.begin(options, this.#timeout);
  }

  #succeeded(scope: CallScope, result: Json): Json {
    this.#scopes.end(scope);
    this.#retries.earn();
    return result;
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
    this.#scopes.clear();
  }
}

/** etcd refused the call's token as expired or unknown: nothing was applied. */
function refusedToken(err: unknown): boolean {
  return err instanceof AuthenticationError && err.message.includes('invalid auth token');
}

/** A call cut off by close() says so, and keeps whether its write may have been applied. */
function cutByClose(err: unknown): unknown {
  if (err instanceof ClientClosedError || !(err instanceof EtcdError)) return err;
  const { indeterminate } = err;
  return new ClientClosedError(
    'the client was closed while the call was in flight' +
      (indeterminate ? '; the write may or may not have been applied' : ''),
    { cause: err, indeterminate },
  );
}
