/**
 * `observeLeader`: every change of an election's leader, in order, and
 * `undefined` whenever the election is left without one.
 *
 * How it works: the prefix is watched from "now", then read whole at one
 * revision R; events up to R are in the read, later ones are applied. (A
 * watch from R + 1 would start in the past, where etcd catches it up only
 * every 100 ms.) The candidates are kept by key; after the events of each
 * revision are applied, the oldest candidate is the leader, and a new leader,
 * a new value of the leader, or its absence is yielded. Go's `Observe` watches only the
 * current leader and, when it goes, reads whoever is oldest then, which skips
 * a leader that came and went in between; watching the whole prefix sees
 * every revision, so none is skipped. The client's watcher resumes after a
 * reconnect from where it stopped (nothing lost, nothing twice); after a
 * compaction it is watched and read again, and only a change is yielded.
 */
import { type Etcd, type KeyValue, WatchCompactedError, type WatchEvent } from '@etcdkit/client';
import { type LeaderInfo, toCandidate } from './leader-info.js';

/** Bytes as a string that maps one-to-one, for use as a map key. */
const mapKey = (kv: KeyValue<unknown>): string => Buffer.from(kv.keyBytes).toString('latin1');

export async function* observeLeader(
  client: Etcd<unknown>,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<LeaderInfo | undefined, void, undefined> {
  const candidates = new Map<string, KeyValue<unknown>>();
  /** What was yielded last: a leader, `null` for none, `undefined` before the first yield. */
  let last: KeyValue<unknown> | null | undefined;
  /** The leader now (`null` for none), or `undefined` if that is what was yielded last. */
  const changed = (): KeyValue<unknown> | null | undefined => {
    let oldest: KeyValue<unknown> | null = null;
    for (const kv of candidates.values())
      if (!oldest || kv.createRevision < oldest.createRevision) oldest = kv;
    const same =
      oldest === null || last == null
        ? oldest === last
        : oldest.createRevision === last.createRevision && oldest.modRevision === last.modRevision;
    if (same) return undefined;
    last = oldest;
    return oldest;
  };
  const list = async (): Promise<bigint> => {
    const r = await client.readdir(prefix, { signal });
    candidates.clear();
    for (const kv of r.kvs) candidates.set(mapKey(kv), kv);
    return r.revision;
  };

  for (;;) {
    try {
      // Watched from "now", then read: a watch that starts at a past revision is caught
      // up by etcd only every 100 ms, while this one delivers each change as it happens.
      await using watcher = await client.watchdir(prefix, signal ? { signal } : {});
      const listed = await list();
      const leader = changed();
      if (leader !== undefined) yield leader ? toCandidate(leader) : undefined;
      for await (const batch of watcher) {
        for (const group of byRevision(batch.events)) {
          // The read already holds what happened up to its revision.
          if (group[0]!.kv.modRevision <= listed) continue;
          for (const event of group) {
            if (event.type === 'delete') candidates.delete(mapKey(event.kv));
            else candidates.set(mapKey(event.kv), event.kv);
          }
          const next = changed();
          if (next !== undefined) yield next ? toCandidate(next) : undefined;
        }
      }
      // The watcher ended without an error: cancelled, or its client closed.
      return;
    } catch (err) {
      if (!(err instanceof WatchCompactedError)) throw err;
    }
  }
}

/** Splits events into runs of one revision each (a txn changes several keys at once). */
function* byRevision(events: WatchEvent<unknown>[]): Generator<WatchEvent<unknown>[]> {
  let run: WatchEvent<unknown>[] = [];
  for (const event of events) {
    if (run.length > 0 && run[0]!.kv.modRevision !== event.kv.modRevision) {
      yield run;
      run = [];
    }
    run.push(event);
  }
  if (run.length > 0) yield run;
}
