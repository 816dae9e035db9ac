/**
 * A distributed readers-writer lock: readers share it, a writer holds it alone,
 * and a waiting writer is never starved by readers that come after it.
 *
 * How it works: readers queue under `<name>/read/`, writers under
 * `<name>/write/`, all ordered by create revision. A reader waits until no
 * writer key older than its own remains; a writer waits until no key at all
 * older than its own remains. A reader that arrives after a waiting writer is
 * therefore behind it. Waiting, fencing and clean-up are those of Mutex.
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
import type { Lock } from './lock.js';

export class RWMutex {
  readonly name: string;
  readonly #prefix: string;
  readonly #target: LockTarget;

  constructor(target: LockTarget, name: string) {
    this.#prefix = prefixFor('rwmutex', name);
    this.name = name;
    this.#target = checkTarget('RWMutex', target);
  }

  /** Shared (read) access: held together with other readers, never with a writer. */
  async readLock(options: AcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('readLock', options);
    return this.#acquire(`${this.#prefix}read/`, `${this.#prefix}write/`, options);
  }

  /** Exclusive (write) access. */
  async writeLock(options: AcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('writeLock', options);
    return this.#acquire(`${this.#prefix}write/`, this.#prefix, options);
  }

  /** Joins under `own`, then waits until nothing older remains under `blockers`. */
  #acquire(own: string, blockers: string, options: AcquireOptions): Promise<Lock> {
    const scope = this.#prefix;
    return acquire(
      this.#target,
      { own, scope },
      options,
      (session, entry) => (signal) =>
        waitForTurn(session.client, blockers, entry.key, entry.createRevision, { signal, scope }),
    );
  }
}
