/**
 * Joining a semaphore's queue only in agreement with its limit.
 *
 * How it works: every queue key carries the limit its contender was made
 * with, and a key is created only by a txn whose compares check that limit
 * against the queue as it stands: either nothing is under the prefix, or the
 * oldest key (the head) is still the one the contender read, and read with
 * the same limit. By induction every key in the queue shares one limit,
 * whichever of them is the head now, so comparing with the head is comparing
 * with all. A contender whose limit differs writes nothing and gets
 * SemaphoreLimitError. The first try assumes an idle semaphore and reads the
 * head in its failure branch: joining takes one round trip when nobody is
 * queued, two when somebody is (more only while the head keeps changing).
 */
import { Compare, type KeyValue, Op, type QueueEntry, type RangeOptions } from '@etcdkit/client';
import type { Join } from './contender.js';
import { SemaphoreLimitError } from './errors.js';
import { decodeClaim, encodeClaim } from './semaphore-claim.js';

const OLDEST_FIRST: RangeOptions = { sortTarget: 'createRevision', sortOrder: 'ascend', limit: 1 };

/** The join of a semaphore contender taking `permits` of `limit`, under `prefix`. */
export function joinSemaphore(prefix: string, permits: number, limit: number): Join {
  const value = encodeClaim({ permits, limit });
  return async (session, key, signal) => {
    let head: KeyValue<unknown> | undefined;
    for (;;) {
      const queueAsRead = head
        ? Compare.createRevision(head.key, '=', head.createRevision)
        : Compare.dir(Compare.createRevision(prefix, '=', 0n));
      const r = await session.client
        .txn()
        .if(Compare.createRevision(key, '=', 0n), queueAsRead)
        .success(Op.putRaw(key, value, { lease: session.lease }), Op.readdir(prefix, OLDEST_FIRST))
        .failure(Op.get(key), Op.readdir(prefix, OLDEST_FIRST))
        .commit({ signal });
      const [first, second] = r.results;
      const oldest = second?.type === 'range' ? second.kvs[0] : undefined;
      if (r.succeeded) {
        return {
          key,
          createRevision: r.revision,
          revision: r.revision,
          head: oldest,
          existed: false,
          kv: undefined,
        } satisfies QueueEntry<unknown>;
      }
      const own = first?.type === 'range' ? first.kvs[0] : undefined;
      if (own) {
        return {
          key,
          createRevision: own.createRevision,
          revision: r.revision,
          head: oldest,
          existed: true,
          kv: own,
        };
      }
      head = oldest;
      const queued = head && decodeClaim(head.valueBytes).limit;
      if (head && queued !== undefined && queued !== limit) {
        throw new SemaphoreLimitError(limit, queued, head.key);
      }
    }
  };
}
