/**
 * A distributed counting semaphore: at most `permits` holders at once, served
 * in arrival order.
 *
 * How it works: contenders queue under `<name>/` by create revision, as for
 * Mutex. A contender holds a permit while fewer than `permits` keys older than
 * its own remain, counted on the client's shared view of the queue after each
 * change (any holder may leave first). Every holder's token is its key's
 * create revision.
 */
import { InvalidArgumentError, waitForTurn } from '@etcdkit/client';
import {
  type AcquireOptions,
  acquire,
  checkAcquireOptions,
  checkTarget,
  type LockTarget,
  prefixFor,
} from './contender.js';
import type { Lock } from './lock.js';

export class Semaphore {
  readonly name: string;
  /** How many holders may hold a permit at once. */
  readonly permits: number;
  readonly #prefix: string;
  readonly #target: LockTarget;

  constructor(target: LockTarget, name: string, permits: number) {
    this.#prefix = prefixFor('semaphore', name);
    if (!Number.isSafeInteger(permits) || permits < 1) {
      throw new InvalidArgumentError(
        `semaphore permits must be a whole number >= 1, got ${permits}`,
      );
    }
    this.name = name;
    this.permits = permits;
    this.#target = checkTarget('Semaphore', target);
  }

  /** Waits in line for a permit. */
  async acquire(options: AcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('acquire', options);
    const prefix = this.#prefix;
    return acquire(
      this.#target,
      { own: prefix, scope: prefix },
      options,
      (session, entry) => (signal) =>
        waitForTurn(session.client, prefix, entry.key, entry.createRevision, {
          signal,
          permits: this.permits,
        }),
    );
  }
}
