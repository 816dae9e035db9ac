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

  async #waitForPermit(etcd: Etcd<unknown>, mine: bigint, signal: AbortSignal): Promise<void> {
    for (;;) {
      // etcd applies revision filters after counting, so count the keys themselves
      // (it also applies `limit` after filtering once a filter is set).
      const ahead = await etcd.readdir(this.#prefix, {
        keysOnly: true,
        maxCreateRevision: mine - 1n,
        sortTarget: 'createRevision',
        sortOrder: 'ascend',
        limit: this.permits,
        signal,
      });
      if (ahead.kvs.length < this.permits) return;
      await using watcher = await etcd.watchdir(this.#prefix, {
        startRevision: ahead.revision + 1n,
        filters: ['noPut'],
        signal,
      });
      for await (const batch of watcher) {
        if (batch.events.length > 0) break;
      }
    }
  }
}
