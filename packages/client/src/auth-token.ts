/**
 * The auth token calls carry when the client authenticates.
 *
 * How it works: the token is fetched once for all concurrent callers, and
 * again when it is older than the refresh interval (before etcd's token TTL
 * ends) or etcd called it invalid. Reading a fresh token is synchronous, so a
 * call that needs no fetch does not wait for anything.
 */
import { performance } from 'node:perf_hooks';
import type { AuthOptions } from './transport-options.js';

export const DEFAULT_TOKEN_REFRESH_MS = 240_000;

/** `AuthToken.now()`'s answer when a token must be fetched first. */
export const FETCH = Symbol('fetch');

export class AuthToken {
  readonly #maxAge: number;
  readonly #authenticate: () => Promise<string>;
  #token: { value: string; at: number } | undefined;
  #fetching: Promise<string> | undefined;

  /** `authenticate` asks etcd for a new token. */
  constructor(auth: AuthOptions, authenticate: () => Promise<string>) {
    this.#maxAge = auth.refreshInterval ?? DEFAULT_TOKEN_REFRESH_MS;
    this.#authenticate = authenticate;
  }

  /** The token to send, if it is fresh; else `FETCH`. */
  now(): string | typeof FETCH {
    const token = this.#token;
    return token && performance.now() - token.at < this.#maxAge ? token.value : FETCH;
  }

  /** A new token, fetched once for all who ask while it is on its way. */
  fetch(): Promise<string> {
    this.#fetching ??= this.#authenticate()
      .then((value) => {
        this.#token = { value, at: performance.now() };
        return value;
      })
      .finally(() => {
        this.#fetching = undefined;
      });
    return this.#fetching;
  }

  /** Forgets the current token. */
  drop(): void {
    this.#token = undefined;
  }

  /** Forgets `token` after etcd refused it, unless a newer one replaced it already. */
  invalidate(token: string | undefined): void {
    if (token !== undefined && this.#token?.value === token) this.#token = undefined;
  }
}
