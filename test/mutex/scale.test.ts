// 1,000 contenders on one lock, measured by etcd itself: served in queue order,
// one watcher per waiter, and one watch event delivered per release.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, Mutex } from '@etcdkit/mutex';
import {
  assertIncreasing,
  etcdMetrics,
  expectQueue,
  expectQueueLength,
  expectWatchers,
  queueKeys,
  since,
} from './helpers.js';

// This file has its own member and one test, so etcd's counters below count
// only what this test does.
let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const CONTENDERS = 1000;

test('1,000 contenders are served in FIFO order and each release is one event to the client', async (t) => {
  // A thousand calls in flight at once queue for the client's connections, and the
  // machine may be busy with other suites: a per-call deadline and a session TTL
  // longer than the defaults keep a slow moment (etcd answering the session's
  // keepalive late while it writes a thousand queue keys) from failing a test
  // that is about the order of the queue.
  await using client = new Etcd({ endpoints: etcd.endpoint, timeout: 60_000, sessionTtl: 60 });
  const name = `${uniquePrefix('scale')}lock`;
  const mutex = new Mutex(client, name);
  await expectWatchers(etcd.endpoint, 0);
  const holder = await mutex.lock();

  const served: Lock[] = [];
  const start = performance.now();
  // All contenders share the client's session, as the workers of one process do.
  const contenders = Array.from({ length: CONTENDERS }, () =>
    mutex.lock().then(async (lock) => {
      served.push(lock);
      await lock.release();
    }),
  );
  await expectQueueLength(client, name, CONTENDERS + 1, 120_000);
  t.diagnostic(`${CONTENDERS} contenders queued in ${since(start)} ms`);
  // How waking is measured, honestly and from outside the library: etcd counts
  // the watchers open on the member (etcd_debugging_mvcc_watcher_total) and the
  // watch events it has sent, one per event per watcher, after filters
  // (etcd_debugging_mvcc_events_total). Nothing else uses this member. The
  // client keeps one view of the queue for all its contenders and holders, so
  // there is one watcher, and each release is one event sent to it; a watcher
  // per waiter on the prefix or the holder would add an event per waiter per
  // release (about half a million here).
  await expectWatchers(etcd.endpoint, 1, 120_000);
  t.diagnostic(`all ${CONTENDERS} waiting on the client's one view after ${since(start)} ms`);
  assert.equal(served.length, 0, 'nobody got in while the lock was held');
  const queued = await queueKeys(client, name);
  const before = await etcdMetrics(etcd.endpoint);

  const drain = performance.now();
  await holder.release();
  await Promise.all(contenders);
  const drained = performance.now() - drain;
  const afterwards = await etcdMetrics(etcd.endpoint);
  const delta = (metric: string) => (afterwards.get(metric) ?? 0) - (before.get(metric) ?? 0);
  const deletes = delta('etcd_mvcc_delete_total');
  const events = delta('etcd_debugging_mvcc_events_total');
  t.diagnostic(
    `${CONTENDERS} hand-overs in ${Math.round(drained)} ms (${(drained / CONTENDERS).toFixed(1)} ms each); ` +
      `${deletes} deletes, ${events} watch events delivered, ` +
      `${delta('etcd_mvcc_range_total')} ranges read`,
  );

  // FIFO: acquisition order is the queue order etcd recorded, and tokens strictly increase.
  assert.equal(served.length, CONTENDERS);
  assert.deepEqual(
    served.map((l) => l.key),
    queued.slice(1).map((k) => k.key),
  );
  assertIncreasing(served.map((l) => l.token));
  // One delete per release: the first holder and every contender.
  assert.equal(deletes, CONTENDERS + 1);
  // Each release reached the one view once, however many waited.
  assert.equal(events, deletes, 'one watch event per release');
  await expectQueue(client, name, []);
  await expectWatchers(etcd.endpoint, 0);
});
