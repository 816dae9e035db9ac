/**
 * A fair, fenced distributed mutex, with the keys and algorithm of etcd's Go
 * `concurrency.Mutex`, so it excludes etcdctl lock and Go services too.
 *
 * How it works: `lock()` creates the contender's key under `<name>/` on its
 * session's lease and reads the oldest key, in one txn. If its own key is the
 * oldest, the lock is held. Otherwise it waits on the client's shared view of
 * the queue (one watch per client and prefix) until no older key is left,
 * then confirms with one linearizable read that none is and that its own key
 * still exists (its lease may have expired meanwhile). The key's create
 * revision is the fencing token. Giving up a wait (signal, timeout, lost
 * session) deletes the key in the background, so no ghost is left in line.
 */
import { waitForTurn } from '@etcdkit/client';
import {
  type AcquireOptions,
  acquire,
  checkAcquireOptions,
  checkTarget,
  type LockTarget,
  prefixFor,
} from './contender.js';
import { LockNotHeldError, LockTakenError } from './errors.js';
import type { Lock } from './lock.js';

export class Mutex {
  /** The lock's name; its keys live under `<name>/`. */
  readonly name: string;
  readonly #prefix: string;
  readonly #target: LockTarget;
  readonly #held: Lock[] = [];

  /** A mutex on `name`, kept by `session`, or by the client's shared session. */
  constructor(target: LockTarget, name: string) {
    this.#prefix = prefixFor('mutex', name);
    this.name = name;
    this.#target = checkTarget('Mutex', target);
  }

  /** Waits in line (FIFO) until the lock is held. */
  async lock(options: AcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('lock', options);
    return this.#acquire(options, false);
  }

  /**
   * Takes the lock if it is free right now; otherwise rejects with LockTakenError at once.
   * `signal` and `timeout` bound the attempt itself (one txn), as they bound a wait in `lock()`.
   */
  async tryLock(options: AcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('tryLock', options);
    return this.#acquire(options, true);
  }

  /** Releases the lock this mutex object acquired most recently. */
  async unlock(): Promise<void> {
    const lock = this.#held.pop();
    if (!lock) throw new LockNotHeldError(`mutex ${this.name} is not held by this object`);
    await lock.release();
  }

  async #acquire(options: AcquireOptions, tryOnly: boolean): Promise<Lock> {
    const place = { own: this.#prefix, scope: this.#prefix };
    const lock = await acquire(this.#target, place, options, (session, entry) => {
      if (entry.head?.createRevision === entry.createRevision) return undefined;
      if (tryOnly) {
        throw new LockTakenError(
          `mutex ${this.name} is held by ${entry.head?.key ?? 'another holder'}`,
          entry.head?.key,
          entry.head?.createRevision,
        );
      }
      return (signal) =>
        waitForTurn(session.client, this.#prefix, entry.key, entry.createRevision, { signal });
    });
    this.#held.push(lock);
    lock.signal.addEventListener('abort', () => this.#forget(lock), { once: true });
    return lock;
  }

  #forget(lock: Lock): void {
    const at = this.#held.indexOf(lock);
    if (at >= 0) this.#held.splice(at, 1);
  }
}
