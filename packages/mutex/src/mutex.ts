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
 * revision is the fencing token. With `lockDelay`, a contender whose turn has
 * come then waits out the delay a holder that lost the lock unreleased left
 * behind (lock-delay.ts). Giving up a wait (signal, timeout, lost
 * session) deletes the key in the background, so no ghost is left in line.
 */
import { InvalidArgumentError, waitForTurn } from '@etcdkit/client';
import {
  type AcquireOptions,
  acquire,
  checkAcquireOptions,
  checkTarget,
  type Held,
  type LockTarget,
  prefixFor,
} from './contender.js';
import { LockNotHeldError, LockTakenError } from './errors.js';
import type { Lock } from './lock.js';
import { LockDelay, MAX_LOCK_DELAY_MS } from './lock-delay.js';

export interface MutexOptions {
  /**
   * Lock-delay in ms, as in Consul: after a holder loses the lock without
   * releasing it (its process crashed or paused, its lease expired), nobody
   * gets the lock until this long after a contender saw the loss. Rounded up
   * to whole seconds; at most 60 000. Every process using the lock must set
   * it to honour it. Default: 0, no delay (Consul's default is 15 s).
   */
  lockDelay?: number | undefined;
}

const MUTEX_OPTIONS = new Set(['lockDelay']);

/** Checks the options and returns the lock-delay in ms. */
function checkOptions(options: MutexOptions): number {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('new Mutex(target, name, options): options must be an object');
  }
  for (const name of Object.keys(options)) {
    if (!MUTEX_OPTIONS.has(name)) {
      throw new InvalidArgumentError(`new Mutex: unknown option "${name}" (known: lockDelay)`);
    }
  }
  const ms = options.lockDelay ?? 0;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_LOCK_DELAY_MS) {
    throw new InvalidArgumentError(
      `new Mutex: lockDelay must be a whole number of ms from 0 to ${MAX_LOCK_DELAY_MS}, got ${ms}`,
    );
  }
  return ms;
}

export class Mutex {
  /** The lock's name; its keys live under `<name>/`. */
  readonly name: string;
  /** The lock-delay in ms; 0 for none. */
  readonly lockDelay: number;
  readonly #prefix: string;
  readonly #target: LockTarget;
  readonly #delay: LockDelay | undefined;
  readonly #held: Lock[] = [];

  /** A mutex on `name`, kept by `session`, or by the client's shared session. */
  constructor(target: LockTarget, name: string, options: MutexOptions = {}) {
    this.#prefix = prefixFor('mutex', name);
    this.name = name;
    this.#target = checkTarget('Mutex', target);
    this.lockDelay = checkOptions(options);
    this.#delay = this.lockDelay > 0 ? new LockDelay(name, this.lockDelay) : undefined;
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
    const delay = this.#delay;
    const lock = await acquire(this.#target, place, options, (session, entry) => {
      const first = entry.head?.createRevision === entry.createRevision;
      if (first && !delay) return undefined;
      if (!first && tryOnly) {
        throw new LockTakenError(
          `mutex ${this.name} is held by ${entry.head?.key ?? 'another holder'}`,
          entry.head?.key,
          entry.head?.createRevision,
        );
      }
      const { key, createRevision } = entry;
      const wait = first
        ? undefined
        : (signal: AbortSignal) =>
            waitForTurn(session.client, this.#prefix, key, createRevision, { signal });
      if (!delay) return wait;
      return async (signal): Promise<Held> => {
        const turn = await wait?.(signal);
        // A key lost while waiting is for acquire() to report.
        if (turn && !turn.own) return turn;
        return delay.enter(session, key, createRevision, signal, tryOnly);
      };
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
