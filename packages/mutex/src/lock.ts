/**
 * A held lock (or semaphore permit): its key, its fencing token, a signal that
 * aborts when it is lost, and the way to give it back.
 *
 * How loss is noticed: the session's signal aborts when its lease is lost or
 * may be; and, as an election's leadership does, the lock follows its own key
 * from the moment it is held, on the client's shared view of the queue (the
 * one watch that also told it its turn had come), so a delete from outside (an
 * operator's `etcdctl del`, a revoked lease) aborts `signal` as soon as the
 * event arrives, when the next contender learns of it too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ClientClosedError,
  Compare,
  EtcdError,
  keepTrying,
  Op,
  releasing,
  type Session,
  waitForLoss,
} from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import type { Claim } from './contender.js';
import { LockLostError, LockNotHeldError } from './errors.js';

export interface LockEvents {
  /** The session's keepalive is overdue: the lock may soon be lost. Pause work that must not run unprotected. */
  suspended: [];
  /** The keepalive was answered again after `suspended`. */
  resumed: [];
  /** The lock was lost (not released): `signal` has aborted with this error. */
  lost: [error: Error];
}

/** Pause before following the key again after the view's watch failed (a reconnect that could not resume). */
const REWATCH_PAUSE_MS = 200;

const RELEASE_RESENDS = 3;

export class Lock extends EventEmitter<LockEvents> {
  /** The key that holds the lock. */
  readonly key: string;
  /**
   * The fencing token: the key's create revision. It strictly increases from
   * one holder to the next, so a resource that remembers the highest token it
   * has seen can refuse a holder that has been overtaken.
   */
  readonly token: bigint;
  /** The session whose lease keeps the lock. */
  readonly session: Session;
  readonly #claim: Claim;
  /** The prefix of the whole lock, whose shared view follows the key. */
  readonly #scope: string;
  /** What the release does besides deleting the key, in the same txn. */
  readonly #releaseOps: readonly Op[];
  readonly #released = new AbortController();
  /** Aborted when the key is seen deleted or replaced from outside. */
  readonly #gone = new AbortController();
  readonly #signal: AbortSignal;
  readonly #onSuspended = () => this.emit('suspended');
  readonly #onResumed = () => this.emit('resumed');
  #releasing: Promise<void> | undefined;
  /** A delete of this lock's key was sent and its answer lost: it may have been applied. */
  #maybeDeleted = false;

  /** @internal */
  constructor(
    session: Session,
    claim: Claim,
    token: bigint,
    scope: string,
    releaseOps: readonly Op[] = [],
  ) {
    super();
    this.#releaseOps = releaseOps;
    this.session = session;
    this.key = claim.key;
    this.token = token;
    this.#claim = claim;
    this.#scope = scope;
    this.#signal = AbortSignal.any([session.signal, this.#released.signal, this.#gone.signal]);
    session.on('suspended', this.#onSuspended);
    session.on('resumed', this.#onResumed);
    this.#signal.addEventListener('abort', () => this.#ended(), { once: true });
    void this.#watchKey(scope);
  }

  /** Whether the session's keepalive is overdue right now (see `suspended`). */
  get suspended(): boolean {
    return this.held && this.session.suspended;
  }

  #ended(): void {
    this.session.off('suspended', this.#onSuspended);
    this.session.off('resumed', this.#onResumed);
    // Released, or its session closed by its owner (or with its client): nothing was lost.
    if (this.#released.signal.aborted || this.session.state === 'closed') return;
    this.emit('lost', this.#signal.reason as Error);
  }

  /** Follows the own key until the lock ends; a delete or a new key under the same name ends it. */
  async #watchKey(scope: string): Promise<void> {
    const signal = this.#signal;
    while (!signal.aborted) {
      try {
        await waitForLoss(this.session.client, scope, this.key, this.token, { signal });
        return this.#lose();
      } catch (err) {
        if (signal.aborted || err instanceof ClientClosedError) return;
        await sleep(REWATCH_PAUSE_MS, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  #lose(): void {
    if (this.#signal.aborted) return;
    this.#gone.abort(
      new LockLostError(
        `${this.key} (token ${this.token}) was deleted: the lock is no longer held`,
      ),
    );
  }

  /** Aborts when the lock is lost (the session's lease is gone) or released. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** True until released or lost. */
  get held(): boolean {
    return !this.#signal.aborted;
  }

  /**
   * A comparison that holds only while this lock is held: add it to a txn so a
   * write to etcd happens only under the lock (`txn().if(lock.guard())...`).
   */
  guard(): Compare {
    return Compare.createRevision(this.key, '=', this.token);
  }

  /**
   * Releases the lock; the next waiter in line gets it. Rejects with
   * LockNotHeldError if the lock was already lost. Releasing twice is a no-op.
   */
  release(): Promise<void> {
    // Only a settled outcome is kept: after an error whose outcome is unknown
    // the lock may still be held, and release() can be called again.
    this.#releasing ??= this.#release().catch((err: unknown) => {
      if (!(err instanceof LockNotHeldError)) this.#releasing = undefined;
      throw err;
    });
    return this.#releasing;
  }

  /** The same as `release()`. */
  unlock(): Promise<void> {
    return this.release();
  }

  async #release(): Promise<void> {
    // From the moment release is asked for, the holder must not count on the lock.
    this.#released.abort(new EtcdError('the lock was released'));
    // The next in line here may take its turn from the delete alone: nobody holds anything to lose.
    releasing(this.session.client, this.#scope, this.key, this.token);
    let succeeded: boolean;
    try {
      succeeded = await this.#delete();
    } catch (err) {
      // Outcome unknown: keep deleting in the background (the delete is guarded
      // by the token, so it can never remove a later holder's key), so the next
      // contender is not blocked until the lease expires.
      void this.#deleteInBackground();
      throw err;
    }
    this.#claim.free();
    if (!succeeded) {
      throw new LockNotHeldError(`${this.key} was not held any more: its session's lease was lost`);
    }
  }

  /** The guarded delete, sent again while its outcome is unknown. Resolves false if not held. */
  async #delete(): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.session.client
          .txn()
          .if(this.guard())
          .success(Op.delete(this.key), ...this.#releaseOps)
          .commit();
        // A key missing after an earlier delete of ours went unanswered was deleted by that one.
        return r.succeeded || this.#maybeDeleted;
      } catch (err) {
        if (err instanceof EtcdError && err.indeterminate) this.#maybeDeleted = true;
        if (attempt < RELEASE_RESENDS && err instanceof EtcdError && err.indeterminate) continue;
        throw err;
      }
    }
  }

  async #deleteInBackground(): Promise<void> {
    // The delete just failed: wait before the next try; stop once the lease is gone.
    await keepTrying(() => this.#delete().then(() => true), this.session.signal, {
      pauseFirst: true,
    });
    this.#claim.free();
  }

  /** Releases the lock; a lock already lost is not an error here. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch((err: unknown) => {
      if (!(err instanceof LockNotHeldError)) throw err;
    });
  }
}
