/**
 * A signal that aborts when a lock's key is deleted by anyone: an operator's
 * `etcdkit del`, an expiry etcd saw first. The session notices a lost lease
 * only at its next keepalive; a deleted key it never notices.
 *
 * How it works: the key is read, and if it still has the holder's token it is
 * watched for deletes from the revision after that read, so no delete falls in
 * between. A failed watch (compacted history, etcd unreachable) starts over
 * with a read after a pause.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError, type Etcd, EtcdError, Op } from '@etcdkit/client';

const RETRY_PAUSE_MS = 500;

export function whenDeleted(
  etcd: Etcd<string>,
  key: string,
  token: bigint,
  stop: AbortSignal,
): AbortSignal {
  const deleted = new AbortController();
  const gone = () => deleted.abort(new EtcdError(`${key} (token ${token}) was deleted`));
  void (async () => {
    while (!stop.aborted) {
      try {
        const r = await etcd.txn().success(Op.get(key)).commit({ signal: stop });
        const kv = r.results[0]?.type === 'range' ? r.results[0].kvs[0] : undefined;
        if (kv?.createRevision !== token) return gone();
        await using watcher = await etcd.watch(key, {
          startRevision: r.revision + 1n,
          filters: ['noPut'],
          signal: stop,
        });
        for await (const batch of watcher) {
          if (batch.events.some((e) => e.type === 'delete')) return gone();
        }
      } catch (err) {
        if (stop.aborted || err instanceof ClientClosedError) return;
      }
      await sleep(RETRY_PAUSE_MS, undefined, { signal: stop }).catch(() => undefined);
    }
  })();
  return deleted.signal;
}
