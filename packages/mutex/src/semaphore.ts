/**
 * A distributed counting semaphore: at most `permits` holders at once, served
 * in arrival order.
 *
 * How it works: contenders queue under `<name>/` by create revision, as for
 * Mutex. A contender holds a permit while fewer than `permits` keys older than
 * its own remain. Otherwise it watches the prefix for deletions (any holder
 * may leave first) and counts again. Every holder's token is its key's
 * create revision.
 */
import { type Etcd, InvalidArgumentError } from '@etcdkit/client';
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
    return acquire(
      this.#target,
      this.#prefix,
      options,
      (session, entry) => (signal) =>
        this.#waitForPermit(session.client, entry.createRevision, signal),
    );
  }

  /** Resolves once fewer than `permits` keys are ahead; it reads no own key (undefined turn). */
  async #waitForPermit(etcd: Etcd<unknown>, mine: bigint, signal: AbortSignal): Promise<undefined> {
    // etcd applies revision filters after counting, so count the keys themselves
    // (it also applies `limit` after filtering once a filter is set).
    const blocked = async () =>
      (
        await etcd.readdir(this.#prefix, {
          keysOnly: true,
          maxCreateRevision: mine - 1n,
          sortTarget: 'createRevision',
          sortOrder: 'ascend',
          limit: this.permits,
          signal,
        })
      ).kvs.length >= this.permits;
    if (!(await blocked())) return undefined;
    // Watched from "now", not from the read's revision + 1: a watch that starts in
    // the past is caught up by etcd only every 100 ms. A read after the watch
    // exists shows whatever happened before it.
    await using watcher = await etcd.watchdir(this.#prefix, { filters: ['noPut'], signal });
    const iterator = watcher[Symbol.asyncIterator]();
    while (await blocked()) {
      const next = await iterator.next();
      if (next.done) {
        signal.throwIfAborted();
        return undefined;
      }
    }
  }
}
