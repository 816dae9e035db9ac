/**
 * What both transports share: the life of a call. A transport supplies how a
 * request body is encoded once, how one attempt goes to one endpoint, and what
 * must be learnt before the first call (the gateway's API prefix); the rest is
 * here, so deadlines, aborts, auth tokens, retries, failover and closing behave
 * the same on every wire.
 *
 * How a call goes: its scope holds its deadline and the caller's signal (one
 * shared timer for all deadlines, no AbortController unless something must
 * wait). The common case, a first attempt that succeeds once the transport is
 * ready and the token fresh, is one request and one settled promise. A token
 * etcd refused is fetched anew once; other failures are retried within the
 * deadline and the retry budget when they are safe to retry (`Retries`). When
 * an endpoint fails, `sendWithFailover` moves on to the next if the request
 * provably never reached etcd, or if it was a read; a write that may have
 * reached etcd is reported as indeterminate.
 */
import { untilAborted } from './aborted.js';
import { AuthToken, FETCH } from './auth-token.js';
import type { CallScope } from './call-scope.js';
import { CallScopes } from './call-scopes.js';
import { type Endpoint, EndpointSet, type Links } from './endpoints.js';
import {
  AuthenticationError,
  ClientClosedError,
  EtcdError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { sendWithFailover } from './failover.js';
import { Retries } from './retries.js';
import type { CallOptions, TransportOptions } from './transport-options.js';
import { int64, type Json, str } from './wire.js';

export abstract class BaseTransport<L, E> {
  /** Endpoints and their health; `on('endpoint-down' | 'endpoint-up')` reports changes. */
  readonly endpointSet: EndpointSet<L>;
  readonly #timeout: number;
  /** The auth token, when the client authenticates. */
  protected readonly token: AuthToken | undefined;
  readonly #retries = new Retries();
  protected readonly scopes = new CallScopes();
  #closed = false;
  /** Closing: only lease revokes (a closing client's sessions) may still go out. */
  #closing = false;

  constructor(options: TransportOptions, links: Links<L>) {
    this.#timeout = options.timeout;
    const { auth } = options;
    this.token =
      auth &&
      new AuthToken(auth, () =>
        this.withDeadline({}, (scope) => this.#authenticate(auth.user, auth.password, scope)),
      );
    this.endpointSet = new EndpointSet(options.endpoints, links);
  }

  /** Encodes a request body once, before any attempt; throws on a body that cannot be sent. */
  protected abstract encode(method: string, body: Json): E;
  /** Whether calls can go out at once (nothing left to learn first). */
  protected abstract get ready(): boolean;
  /** Learns what calls need first, under `scope`. */
  protected abstract prepare(scope: CallScope): Promise<void>;
  /** One attempt of `method` on `endpoint`; resolves to etcd's answer or rejects with why not. */
  protected abstract attempt(
    endpoint: Endpoint<L>,
    method: string,
    body: E,
    scope: CallScope,
    write: boolean,
    token: string | undefined,
  ): Promise<Json>;

  get endpoints(): string[] {
    return this.endpointSet.list.map((e) => e.url);
  }

  /** The endpoint calls go to first: the last one that answered. */
  get currentEndpoint(): string {
    return this.endpointSet.current.url;
  }

  /** Moves streams and calls on to the next endpoint after `url` failed. */
  rotateFrom(url: string, error: Error = new UnavailableError(`${url} failed`)): void {
    this.endpointSet.failed(url, error);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** New calls and streams are refused (lease revokes of a closing client excepted). */
  protected get closing(): boolean {
    return this.#closing;
  }

  /** The client's deadline for each call in ms (0: none). */
  get timeout(): number {
    return this.#timeout;
  }

  get authenticated(): boolean {
    return this.token !== undefined;
  }

  /**
   * The token to send (undefined without auth), fetched first if needed while
   * `waiter.signal` allows: a call's scope makes that signal only then.
   */
  protected tokenFor(waiter: {
    readonly signal: AbortSignal;
  }): string | undefined | Promise<string> {
    const token = this.token;
    const now = token?.now();
    return now === FETCH ? untilAborted(token!.fetch(), waiter.signal) : now;
  }

  /** Asks etcd for a token. */
  async #authenticate(name: string, password: string, scope: CallScope): Promise<string> {
    if (!this.ready) await this.prepare(scope);
    const body = this.encode('auth/authenticate', { name, password });
    const res = await this.send('auth/authenticate', body, scope, false, undefined);
    const value = str(res.token, 'token');
    if (!value) throw new ProtocolError('etcd answered authenticate without a token');
    return value;
  }

  /** etcd called the current token invalid somewhere a call cannot retry (a stream): drop it. */
  tokenRefused(): void {
    this.token?.drop();
  }

  /**
   * Whether the member at `url` reports a raft leader. Only an explicit "no
   * leader" answer is false; an unreachable member is the stream's own concern.
   */
  async hasLeader(url: string): Promise<boolean> {
    try {
      const status = await this.#status(url, this.#timeout || 5_000);
      if (status === undefined) return true;
      return int64(status.leader, 'leader') !== 0n;
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
    const scope = this.scopes.open(undefined, ms);
    try {
      if (!this.ready) await this.prepare(scope);
      const token = await this.tokenFor(scope);
      const body = this.encode('maintenance/status', {});
      return await this.attempt(endpoint, 'maintenance/status', body, scope, false, token);
    } catch (err) {
      if (scope.aborted) throw new TimeoutError(`${url} did not answer within ${ms} ms`);
      throw err;
    } finally {
      this.scopes.end(scope);
    }
  }

  /** One request, moving on to the next endpoint when allowed. */
  protected send(
    method: string,
    body: E,
    scope: CallScope,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    return sendWithFailover(
      this.endpointSet,
      (endpoint) => this.attempt(endpoint, method, body, scope, write, token),
      scope,
      write,
    );
  }

  /** Calls `method` with `body`. `write` marks state changes. */
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
    // Encoding may need what `prepare` learns or loads: before it, the slow path encodes.
    if (!this.ready) return this.#callSlowly(scope, method, { json: body }, write);
    let encoded: E;
    try {
      encoded = this.encode(method, body);
    } catch (err) {
      return Promise.reject(this.scopes.failed(scope, err));
    }
    const token = this.token?.now();
    if (token === FETCH) return this.#callSlowly(scope, method, { encoded }, write);
    return this.send(method, encoded, scope, write, token).then(
      (result) => this.#succeeded(scope, result),
      (err) => this.#recover(err, scope, method, encoded, write, token),
    );
  }

  /**
   * A call that must first learn what calls need or fetch a token. Its body is
   * encoded already, or still in its JSON form when the transport was not ready.
   */
  async #callSlowly(
    scope: CallScope,
    method: string,
    request: { encoded: E } | { json: Json },
    write: boolean,
  ): Promise<Json> {
    let body: E;
    try {
      if ('encoded' in request) {
        body = request.encoded;
      } else {
        if (!this.ready) await this.prepare(scope);
        body = this.encode(method, request.json);
      }
    } catch (err) {
      throw this.scopes.failed(scope, err);
    }
    let result: Json;
    try {
      result = await this.#once(method, body, scope, write);
    } catch (err) {
      return this.#retry(err, scope, method, body, write);
    }
    return this.#succeeded(scope, result);
  }

  /** After a first attempt failed: a refused token is fetched anew once, then retries follow if allowed. */
  async #recover(
    err: unknown,
    scope: CallScope,
    method: string,
    body: E,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    let result: Json;
    try {
      if (!refusedToken(err)) throw err;
      result = await this.#withFreshToken(method, body, scope, write, token);
    } catch (error) {
      return this.#retry(error, scope, method, body, write);
    }
    return this.#succeeded(scope, result);
  }

  /** One attempt of a call: a token first if needed, and a fresh one once if etcd refused it. */
  async #once(method: string, body: E, scope: CallScope, write: boolean): Promise<Json> {
    const token = await this.tokenFor(scope);
    try {
      return await this.send(method, body, scope, write, token);
    } catch (err) {
      if (!refusedToken(err)) throw err;
      return this.#withFreshToken(method, body, scope, write, token);
    }
  }

  /** An expired token is refused before anything is applied: sends again with a new one. */
  async #withFreshToken(
    method: string,
    body: E,
    scope: CallScope,
    write: boolean,
    refused: string | undefined,
  ): Promise<Json> {
    this.token?.invalidate(refused);
    const token = await this.tokenFor(scope);
    return this.send(method, body, scope, write, token);
  }

  /** Retries the call if it may (within its deadline and the budget); else it fails with `err`. */
  async #retry(
    err: unknown,
    scope: CallScope,
    method: string,
    body: E,
    write: boolean,
  ): Promise<Json> {
    let result: Json;
    try {
      // An aborted call is over, whatever its error says: nothing to retry, no budget spent.
      if (scope.aborted) throw err;
      const once = () => this.#once(method, body, scope, write);
      result = await this.#retries.retry(err, once, scope.signal);
    } catch (error) {
      throw this.scopes.failed(scope, this.#closing && !scope.aborted ? cutByClose(error) : error);
    }
    return this.#succeeded(scope, result);
  }

  /** Runs `work` within a call's scope: its deadline and its caller's signal. */
  protected async withDeadline<T>(
    options: CallOptions,
    work: (scope: CallScope) => Promise<T>,
  ): Promise<T> {
    const scope = this.#begin(options);
    let result: T;
    try {
      result = await work(scope);
    } catch (err) {
      throw this.scopes.failed(scope, err);
    }
    this.scopes.end(scope);
    return result;
  }

  /** Starts a call's scope from its options; throws when the call cannot start. */
  #begin(options: CallOptions): CallScope {
    if (this.#closed) throw new ClientClosedError('the client is closed');
    return this.scopes.begin(options, this.#timeout);
  }

  #succeeded(scope: CallScope, result: Json): Json {
    this.scopes.end(scope);
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
    this.scopes.clear();
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
