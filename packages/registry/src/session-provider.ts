/**
 * A `SessionProvider` gives a registration the session its key stands on: one
 * of its own, one given by the caller, or the client's shared session.
 *
 * How it works: it hands out one current session at a time and reports its
 * loss. When the registration moves on, an owned session is orphaned and its
 * lease remembered, to be revoked only once the key is on a new lease:
 * revoking earlier would delete a key that may have survived on the old one.
 * A given session is used once; after it, sessions of its own with the same
 * TTL. `end()` revokes what it owns, or deletes the key from a lease it does
 * not own, so that nothing of the registration is left.
 */
import {
  type CallOptions,
  Compare,
  type Etcd,
  LeaseNotFoundError,
  Op,
  type Session,
  type SessionExpiredError,
} from '@etcdkit/client';
import { retryTransient } from './backoff.js';

/** Where a registration's sessions come from. */
export type SessionSource =
  | { kind: 'own'; ttl: number }
  | { kind: 'given'; session: Session }
  | { kind: 'shared' };

export class SessionProvider {
  readonly #client: Etcd<unknown>;
  readonly #source: SessionSource;
  readonly #onLost: (session: Session, error: SessionExpiredError) => void;
  #current: Session | undefined;
  #owned = false;
  #listener: ((error: SessionExpiredError) => void) | undefined;
  /** Leases of owned sessions left behind, to revoke once the key has moved on. */
  #stale: bigint[] = [];
  #givenUsed = false;

  constructor(
    client: Etcd<unknown>,
    source: SessionSource,
    onLost: (session: Session, error: SessionExpiredError) => void,
  ) {
    this.#client = client;
    this.#source = source;
    this.#onLost = onLost;
  }

  /** The session handed out last, until it is released. */
  get current(): Session | undefined {
    return this.#current;
  }

  /** Releases the current session and hands out a new one; `stop` aborting discards it. */
  async acquire(call: CallOptions, stop: AbortSignal): Promise<Session> {
    this.release();
    const source = this.#source;
    let session: Session;
    let owned = false;
    if (source.kind === 'shared') {
      session = await this.#client.sharedSession(call);
    } else if (source.kind === 'given' && !this.#givenUsed && source.session.alive) {
      session = source.session;
      this.#givenUsed = true;
    } else {
      const ttl = source.kind === 'own' ? source.ttl : source.session.ttl;
      session = await this.#client.session({ ttl, ...call });
      owned = true;
    }
    if (stop.aborted) {
      if (owned) await session.close().catch(() => undefined);
      throw stop.reason;
    }
    const listener = (error: SessionExpiredError) => this.#onLost(session, error);
    session.on('lost', listener);
    this.#current = session;
    this.#owned = owned;
    this.#listener = listener;
    return session;
  }

  /** Forgets the current session; an owned one stops renewing and its lease becomes stale. */
  release(): void {
    const session = this.#detach();
    if (session && this.#owned) {
      session.orphan();
      this.#stale.push(session.lease);
    }
  }

  /** Revokes the leases of owned sessions left behind. Never rejects. */
  async revokeStale(call: CallOptions): Promise<void> {
    const stale = this.#stale;
    this.#stale = [];
    await Promise.all(
      // Gone already is fine; a failure leaves it to expire, since nobody renews it.
      stale.map((lease) => this.#client.revoke(lease, call).catch(() => undefined)),
    );
  }

  /**
   * Removes `key` for good: revokes the current lease if owned (deleting the
   * key with it), otherwise deletes the key if it is still on that lease; then
   * revokes stale leases. Transient errors are retried `attempts` times.
   */
  async end(key: string, call: CallOptions, attempts: number): Promise<void> {
    const owned = this.#owned;
    const session = this.#detach();
    let failure: unknown;
    if (session && owned) {
      // Stop renewing, then revoke. A lease already gone is fine.
      session.orphan();
      const revoke = () => this.#client.revoke(session.lease, call);
      await retryTransient(revoke, attempts, call.signal).catch((err: unknown) => {
        if (!(err instanceof LeaseNotFoundError)) failure = err;
      });
    } else if (session) {
      const guarded = this.#client
        .txn()
        .if(Compare.lease(key, '=', session.lease))
        .success(Op.delete(key));
      await retryTransient(() => guarded.commit(call), attempts, call.signal).catch(
        (err: unknown) => {
          failure = err;
        },
      );
    }
    await this.revokeStale(call);
    if (failure !== undefined) throw failure;
  }

  #detach(): Session | undefined {
    const session = this.#current;
    if (session && this.#listener) session.off('lost', this.#listener);
    this.#current = undefined;
    this.#listener = undefined;
    return session;
  }
}
