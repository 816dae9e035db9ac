/**
 * `viewKeys`: what is stored under a key (or a prefix) now, and after each
 * change, for the barriers' waits.
 *
 * How it works: the key is watched from "now", then read in a txn at some
 * revision R at or after the watch's start; events up to R are in the read,
 * later ones are applied as they come. (A watch from a past revision is
 * served from etcd's "unsynced" group, caught up only every 100 ms.) One
 * snapshot is yielded after the read and one after each batch of events
 * (a batch never splits a revision, so a txn's changes arrive together).
 * After a compaction the key is watched and read again.
 */
import {
  ClientClosedError,
  type Etcd,
  type KeyValue,
  Op,
  WatchCompactedError,
} from '@etcdkit/client';

export interface Snapshot {
  /** The pairs stored now, by key. */
  readonly kvs: ReadonlyMap<string, KeyValue<unknown>>;
  /** The revision they are as of. */
  readonly revision: bigint;
}

export async function* viewKeys(
  etcd: Etcd<unknown>,
  key: string,
  prefix: boolean,
  signal: AbortSignal | undefined,
): AsyncGenerator<Snapshot, never, undefined> {
  const kvs = new Map<string, KeyValue<unknown>>();
  for (;;) {
    try {
      const options = { signal };
      await using watcher = prefix
        ? await etcd.watchdir(key, options)
        : await etcd.watch(key, options);
      const read = await etcd
        .txn()
        .success(prefix ? Op.readdir(key) : Op.get(key))
        .commit({ signal });
      kvs.clear();
      const [result] = read.results;
      for (const kv of result?.type === 'range' ? result.kvs : []) kvs.set(kv.key, kv);
      let revision = read.revision;
      yield { kvs, revision };
      for await (const batch of watcher) {
        // The read already holds what happened up to its revision.
        const fresh = batch.events.filter((event) => event.kv.modRevision > revision);
        if (fresh.length === 0) continue;
        for (const event of fresh) {
          if (event.type === 'delete') kvs.delete(event.kv.key);
          else kvs.set(event.kv.key, event.kv);
        }
        revision = fresh.at(-1)!.kv.modRevision;
        yield { kvs, revision };
      }
      signal?.throwIfAborted();
      // The watcher ended without an error and without an abort: its client closed.
      throw new ClientClosedError('the client is closed');
    } catch (err) {
      if (!(err instanceof WatchCompactedError)) throw err;
    }
  }
}
