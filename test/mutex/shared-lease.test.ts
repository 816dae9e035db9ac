// What the mutex README says about resuming a session's lease: a contender that finds its key
// already there (another process on the same lease, or this one before a restart) deletes it and
// queues anew with a new token. The process that held the old key sees its key deleted: its
// signal aborts with LockLostError, and its guard and its release find the lock gone. Two
// clients stand for the two processes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, Op } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { LockLostError, LockNotHeldError, Mutex } from '@etcdkit/mutex';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd();
});
after(async () => {
  await cluster?.close();
});

test('a second process on the same lease takes a new key and token; the first one is fenced', async () => {
  const name = `${uniquePrefix('shared-lease')}lock`;
  await using first = new Etcd({ endpoints: cluster.endpoints });
  await using second = new Etcd({ endpoints: cluster.endpoints });
  await using sessionA = await first.session({ ttl: 30 });
  await using sessionB = await second.session({ lease: sessionA.lease });

  const a = await new Mutex(sessionA, name).lock();
  const b = await new Mutex(sessionB, name).lock();
  assert.equal(b.key, a.key, 'the same key name: one lease, one key');
  assert.ok(b.token > a.token, 'a new token, not the old key taken over');
  const stored = await first.get(a.key);
  assert.equal(stored?.createRevision, b.token, 'the key now is the second process’s');

  await eventually(() => assert.equal(a.held, false, 'the first process is told by its signal'));
  assert.ok(a.signal.reason instanceof LockLostError, String(a.signal.reason));
  const fenced = await first
    .txn()
    .if(a.guard())
    .success(Op.put(`${name}-data`, 'a'))
    .commit();
  assert.equal(fenced.succeeded, false, 'its guard no longer holds');
  await assert.rejects(a.release(), LockNotHeldError);
  assert.equal(
    (await first.get(b.key))?.createRevision,
    b.token,
    'its release left the new key alone',
  );
  await b.release();
});
