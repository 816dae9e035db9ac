/**
 * The waiting queue behind locks, semaphores and elections, as in etcd's Go
 * `concurrency` package, so they interoperate with Go services and etcdctl.
 *
 * How it works: each contender owns one key, `<prefix><lease ID in hex>`,
 * attached to its session's lease. It is created by a txn that compares
 * `create_revision == 0` and, in the same round trip, reads the oldest key
 * under the prefix: the head of the queue. Keys are ordered by create
 * revision. A contender waits only for the key created just before its own to
 * be deleted (fair FIFO, one wake-up per release), then looks again, since
 * that key may have been deleted while an older one still remains.
 */
import type { Key } from './bytes.js';
import type { Etcd } from './client.js';
import type { KeyValue } from './key-value.js';
import { leaseHex } from './lease.js';
import { Compare, Op, type RangeOptions } from './ops.js';

export interface QueueEntry<V> {
  /** The contender's key. */
  key: string;
  /** Its create revision: the position in the queue, and the fencing token of its holder. */
  createRevision: bigint;
  /** The store revision of the round trip that joined the queue. */
  revision: bigint;
  /** The head of the queue at that revision (this entry itself when it is first). */
  head: KeyValue<V> | undefined;
  /** The key already existed (the same lease joined before, e.g. after a restart). */
  existed: boolean;
  /** The key's current pair. */
  kv: KeyValue<V> | undefined;
}

const OLDEST_FIRST: RangeOptions = { sortTarget: 'createRevision', sortOrder: 'ascend', limit: 1 };

/** The key a lease holds in a queue: `<prefix><lease ID in lower-case hex>`, as etcd's Go client. */
export function queueKey(prefix: string, lease: bigint): string {
  return `${prefix}${leaseHex(lease)}`;
}

/**
 * Creates (or finds) `key` under `prefix`, attached to `lease`, and reads the
 * head, in one txn. `value` is stored as given: bytes, or UTF-8 text.
 */
export async function joinQueue<V>(
  etcd: Etcd<V>,
  prefix: string,
  key: string,
  lease: bigint,
  value: Uint8Array | string = '',
  options: { signal?: AbortSignal | undefined } = {},
): Promise<QueueEntry<V>> {
  const put = Op.putRaw(key, value, { lease });
  const r = await etcd
    .txn()
    .if(Compare.createRevision(key, '=', 0n))
    .success(put, Op.readdir(prefix, OLDEST_FIRST))
    .failure(Op.get(key), Op.readdir(prefix, OLDEST_FIRST))
    .commit({ signal: options.signal });
  const [first, headRead] = r.results;
  const head = headRead?.type === 'range' ? headRead.kvs[0] : undefined;
  if (r.succeeded) {
    // The put's revision is the txn's revision: that is the new key's create revision.
    return {
      key,
      createRevision: r.revision,
      revision: r.revision,
      head,
      existed: false,
      kv: undefined,
    };
  }
  const kv = first?.type === 'range' ? first.kvs[0] : undefined;
  return {
    key,
    createRevision: kv?.createRevision ?? 0n,
    revision: r.revision,
    head,
    existed: true,
    kv,
  };
}

/**
 * Resolves when `key`, seen at `revision`, is deleted (at once if it already
 * was after that revision). Only deletes are watched.
 *
 * The watch starts from "now", not from `revision + 1`: etcd serves a watch
 * that starts in the past from its "unsynced" group, caught up only every
 * 100 ms, so under contention every hand-off would wait for that loop. What
 * happened between `revision` and the watch shows in one read of the key
 * right after the watch exists: gone, or created anew after `revision`, means
 * it was deleted.
 */
export async function waitForDeletion(
  etcd: Etcd<unknown>,
  key: Key,
  revision: bigint,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<void> {
  const watchOptions = { filters: ['noPut' as const] };
  await using watcher = await etcd.watch(
    key,
    options.signal ? { ...watchOptions, signal: options.signal } : watchOptions,
  );
  const now = await etcd.get(key, { signal: options.signal });
  if (!now || now.createRevision > revision) return;
  for await (const batch of watcher) {
    if (batch.events.some((e) => e.type === 'delete')) return;
  }
  options.signal?.throwIfAborted();
}

/** Where a queue entry stands once nothing older is ahead of it. */
export interface Turn {
  /** The store revision at which no older entry remained. */
  revision: bigint;
  /** The entry's own key at that revision; undefined if it is gone (its lease ended, or someone deleted it). */
  own: KeyValue<unknown> | undefined;
}

/**
 * Waits until no key under `prefix` was created before `createRevision`, that
 * is until the entry `ownKey` is at the head of the queue, and returns its
 * own key as read in the same round trip: after the predecessor's delete
 * event, one read says both that nothing older remains and that the entry
 * still holds its place. A hand-off costs one event delivery and one round trip.
 */
export async function waitForTurn(
  etcd: Etcd<unknown>,
  prefix: string,
  ownKey: Key,
  createRevision: bigint,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<Turn> {
  for (;;) {
    const r = await etcd
      .txn()
      .success(
        Op.readdir(prefix, {
          sortTarget: 'createRevision',
          sortOrder: 'descend',
          limit: 1,
          keysOnly: true,
          maxCreateRevision: createRevision - 1n,
        }),
        Op.get(ownKey),
      )
      .commit({ signal: options.signal });
    const [older, mine] = r.results;
    const previous = older?.type === 'range' ? older.kvs[0] : undefined;
    const own = mine?.type === 'range' ? mine.kvs[0] : undefined;
    if (!previous || own?.createRevision !== createRevision) return { revision: r.revision, own };
    await waitForDeletion(etcd, previous.keyBytes, r.revision, options);
  }
}

/**
 * Waits until no key under `prefix` was created before `createRevision`, that
 * is until this entry is at the head of the queue. Returns the revision at
 * which that was seen.
 */
export async function waitForPredecessors(
  etcd: Etcd<unknown>,
  prefix: string,
  createRevision: bigint,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<bigint> {
  for (;;) {
    const r = await etcd.readdir(prefix, {
      sortTarget: 'createRevision',
      sortOrder: 'descend',
      limit: 1,
      keysOnly: true,
      maxCreateRevision: createRevision - 1n,
      signal: options.signal,
    });
    const previous = r.kvs[0];
    if (!previous) return r.revision;
    await waitForDeletion(etcd, previous.keyBytes, r.revision, options);
  }
}
