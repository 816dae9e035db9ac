/**
 * A distributed counting semaphore: at most `limit` permits held at once,
 * each contender taking one or several, served strictly in arrival order.
 *
 * How it works: contenders queue under `<name>/` by create revision, as for
 * Mutex; each key's value says how many permits its contender takes and the
 * limit it was made with (`semaphore-claim.ts`), and joining checks that
 * limit against the queue (`semaphore-join.ts`). A contender holds its
 * permits once the permits of all keys older than its own, holders and
 * waiters alike, plus its own fit in the limit, counted on the client's
 * shared view of the queue after each change (any holder may leave first).
 * Counting waiters too keeps the order strict: a large request at the head
 * is never overtaken by smaller ones behind it. Every holder's token is its
 * key's create revision.
 */
import { type CallOptions, InvalidArgumentError, Session, waitForTurn } from '@etcdkit/client';
import {
  type AcquireOptions,
  acquire,
  checkAcquireOptions,
  checkTarget,
  type LockTarget,
  prefixFor,
} from './contender.js';
import type { Lock } from './lock.js';
import { decodeClaim, permitsOf } from './semaphore-claim.js';
import { joinSemaphore } from './semaphore-join.js';

export interface SemaphoreAcquireOptions extends AcquireOptions {
  /** How many permits to take at once, from 1 to the semaphore's limit. Default: 1. */
  permits?: number | undefined;
}

/** One contender in a semaphore's queue, as `list()` reports it. */
export interface SemaphoreEntry {
  /** The contender's queue key, `<name>/<lease hex>`. */
  key: string;
  /** The permits it takes (1 for a key that does not say). */
  permits: number;
  /** The limit it was made with; undefined for a key that does not say. */
  limit: number | undefined;
  /** Its create revision: its place in the queue, and its fencing token once it holds. */
  token: bigint;
  /** The lease that keeps it. */
  lease: bigint;
  /**
   * Whether the queue grants it its permits: those of every older key plus
   * its own fit in the limit. Its contender may not have learned so yet.
   */
  holds: boolean;
}

function isWholeAtLeastOne(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 1;
}

export class Semaphore {
  readonly name: string;
  /** How many permits may be held at once, by all holders together. */
  readonly limit: number;
  readonly #prefix: string;
  readonly #target: LockTarget;

  /**
   * A semaphore on `name` with `limit` permits. Every process must use the
   * same limit: a contender whose limit differs from that of the contenders
   * already queued is refused with SemaphoreLimitError.
   */
  constructor(target: LockTarget, name: string, limit: number) {
    this.#prefix = prefixFor('semaphore', name);
    if (!isWholeAtLeastOne(limit)) {
      throw new InvalidArgumentError(`semaphore limit must be a whole number >= 1, got ${limit}`);
    }
    this.name = name;
    this.limit = limit;
    this.#target = checkTarget('Semaphore', target);
  }

  /**
   * Waits in line until `permits` (default 1) are held; the returned lock
   * gives all of them back at once. Rejects with SemaphoreLimitError if the
   * contenders already queued were made with another limit.
   */
  async acquire(options: SemaphoreAcquireOptions = {}): Promise<Lock> {
    checkAcquireOptions('acquire', options, ['permits']);
    const permits = options.permits ?? 1;
    if (!isWholeAtLeastOne(permits) || permits > this.limit) {
      throw new InvalidArgumentError(
        `acquire: permits must be a whole number from 1 to the limit ${this.limit}, got ${permits}`,
      );
    }
    const prefix = this.#prefix;
    const join = joinSemaphore(prefix, permits, this.limit);
    return acquire(
      this.#target,
      { own: prefix, scope: prefix, join },
      options,
      (session, entry) => {
        // First in line: nothing older, and the permits fit in the limit.
        if (entry.head?.createRevision === entry.createRevision) return undefined;
        return (signal) =>
          waitForTurn(session.client, prefix, entry.key, entry.createRevision, {
            signal,
            // Older keys may take at most `limit - permits` permits: wait while they take more.
            permits: this.limit - permits + 1,
            weight: permitsOf,
          });
      },
    );
  }

  /** Every contender in line, oldest first: holders, then waiters. */
  async list(options: CallOptions = {}): Promise<SemaphoreEntry[]> {
    const target = this.#target;
    const client = target instanceof Session ? target.client : target;
    const r = await client.readdir(this.#prefix, {
      signal: options.signal,
      timeout: options.timeout,
      sortTarget: 'createRevision',
      sortOrder: 'ascend',
    });
    let taken = 0;
    return r.kvs.map((kv) => {
      const claim = decodeClaim(kv.valueBytes);
      taken += claim.permits;
      return {
        key: kv.key,
        permits: claim.permits,
        limit: claim.limit,
        token: kv.createRevision,
        lease: kv.lease,
        holds: taken <= this.limit,
      };
    });
  }
}
