// What a hand-off costs, counted by etcd itself: between holders of one client
// the next in line takes its turn from the release's event with no read; after
// a release by another process it confirms its turn with one read.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, Mutex } from '@etcdkit/mutex';
import { assertIncreasing, etcdMetrics, expectQueueLength } from './helpers.js';

// A member of its own: its counters count only what these tests do.
let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const CONTENDERS = 10;

/**
 * Queues CONTENDERS behind `holder` on `waiters`, lets `holder` go, and counts
 * the ranges etcd served (a txn's comparisons count as ranges) until all of
 * them have held the lock in turn and released it.
 */
async function drain(
  waiters: Mutex,
  client: Etcd,
  holder: Lock,
): Promise<{ ranges: number; deletes: number }> {
  const served: Lock[] = [];
  const contenders = Array.from({ length: CONTENDERS }, () =>
    waiters.lock().then(async (lock) => {
      served.push(lock);
      await lock.release();
    }),
  );
  await expectQueueLength(client, waiters.name, CONTENDERS + 1);
  const before = await etcdMetrics(etcd.endpoint);
  await holder.release();
  await Promise.all(contenders);
  const afterwards = await etcdMetrics(etcd.endpoint);
  const delta = (m: string) => (afterwards.get(m) ?? 0) - (before.get(m) ?? 0);
  assert.equal(served.length, CONTENDERS);
  assertIncreasing(served.map((l) => l.token));
  return { ranges: delta('etcd_mvcc_range_total'), deletes: delta('etcd_mvcc_delete_total') };
}

test('a hand-off between holders of one client reads nothing', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const mutex = new Mutex(client, `${uniquePrefix('reads')}lock`);
  // One hand-off first, so the client's view of the queue is read before the
  // contenders below join it: their keys are newer than anything it did not see.
  const first = await mutex.lock();
  const second = mutex.lock();
  await expectQueueLength(client, mutex.name, 2);
  await first.release();
  const holder = await second;

  const { ranges, deletes } = await drain(mutex, client, holder);
  assert.equal(deletes, CONTENDERS + 1);
  // Each release is one guarded delete, whose comparison is the only range.
  assert.equal(ranges, deletes, 'no read besides the releases themselves');
});

test('after a release by another process, the next in line confirms its turn with one read', async () => {
  const name = `${uniquePrefix('reads')}lock`;
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using other = new Etcd({ endpoints: etcd.endpoint });
  const mutex = new Mutex(client, name);
  const first = await mutex.lock();
  const second = mutex.lock();
  await expectQueueLength(client, name, 2);
  await first.release();
  const warm = await second;
  // The holder the contenders wait behind belongs to another client.
  const holding = new Mutex(other, name).lock();
  await expectQueueLength(client, name, 2);
  await warm.release();
  const holder = await holding;

  const { ranges, deletes } = await drain(mutex, client, holder);
  assert.equal(deletes, CONTENDERS + 1);
  // The first turn came from another process's release: it is confirmed by one
  // txn reading the own key and the keys ahead (two ranges); the rest are local.
  assert.equal(ranges, deletes + 2);
});
