// Barrier against a real etcd member: hold, release, wait, abort, a held key
// on a session's lease, and the checks of what callers pass.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Barrier, BarrierHeldError } from '@etcdkit/barrier';
import { Etcd, InvalidArgumentError, SessionExpiredError } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { expectWatchers, track } from '../mutex/helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.close());

const connect = () => new Etcd({ endpoints: etcd.endpoint });

test('hold, a second hold fails, waiters pass only after the release', async () => {
  await using client = connect();
  await using other = connect();
  const key = `${uniquePrefix('barrier')}gate`;
  const barrier = new Barrier(client, key);
  assert.equal(await barrier.held(), false);
  await barrier.wait(); // not held: at once
  await barrier.hold();
  const stored = await client.get(key);
  assert.ok(stored, 'the barrier key exists');
  assert.equal(stored.valueBytes.length, 0, 'with an empty value, as Go stores it');
  assert.equal(stored.lease, 0n, 'and no lease');
  const again = await new Barrier(other, key).hold().catch((e: unknown) => e);
  assert.ok(again instanceof BarrierHeldError, String(again));
  assert.equal(again.holderRevision, stored.createRevision);

  let released = false;
  const passed: string[] = [];
  const waiters = [client, other, client].map((c, i) =>
    track(
      new Barrier(c, key).wait().then(() => {
        assert.equal(released, true, `waiter ${i} passed before the release`);
        passed.push(`waiter ${i}`);
      }),
    ),
  );
  await expectWatchers(etcd.endpoint, 3);
  assert.deepEqual(
    waiters.map((w) => w.settled),
    [false, false, false],
  );
  released = true;
  assert.equal(await barrier.release(), true);
  await Promise.all(waiters.map((w) => w.promise));
  assert.equal(passed.length, 3);
  assert.equal(await barrier.release(), false, 'a second release finds nothing, and is no error');
  await expectWatchers(etcd.endpoint, 0);
});

test('a barrier held again after a release blocks new waiters again', async () => {
  await using client = connect();
  const key = `${uniquePrefix('barrier')}again`;
  const barrier = new Barrier(client, key);
  await barrier.hold();
  await barrier.release();
  await barrier.hold();
  const waiter = track(barrier.wait());
  await expectWatchers(etcd.endpoint, 1);
  assert.equal(waiter.settled, false);
  // Released by someone else, by deleting the key.
  await using other = connect();
  await other.delete(key);
  await waiter.promise;
});

test('an aborted wait rejects with the reason and leaves no watch behind', async () => {
  await using client = connect();
  const key = `${uniquePrefix('barrier')}abort`;
  const barrier = new Barrier(client, key);
  await barrier.hold();
  const controller = new AbortController();
  const waiting = barrier.wait({ signal: controller.signal });
  await expectWatchers(etcd.endpoint, 1);
  const reason = new Error('given up');
  controller.abort(reason);
  await assert.rejects(waiting, (err) => err === reason);
  await expectWatchers(etcd.endpoint, 0);
  // Already aborted: rejects at once, with the reason.
  await assert.rejects(
    barrier.wait({ signal: AbortSignal.abort(reason) }),
    (err) => err === reason,
  );
  assert.equal(await barrier.release(), true);
});

test('held on a session, the barrier lifts when the session ends', async () => {
  await using client = connect();
  const key = `${uniquePrefix('barrier')}session`;
  const session = await client.session({ ttl: 30 });
  const barrier = new Barrier(client, key);
  await barrier.hold({ session });
  assert.equal((await client.get(key))?.lease, session.lease);
  const waiter = track(barrier.wait());
  await expectWatchers(etcd.endpoint, 1);
  assert.equal(waiter.settled, false);
  await session.close();
  await waiter.promise;
  await assert.rejects(barrier.hold({ session }), SessionExpiredError);
});

test('a closed client ends a wait', async () => {
  const client = connect();
  const key = `${uniquePrefix('barrier')}closed`;
  const barrier = new Barrier(client, key);
  await barrier.hold();
  const waiting = barrier.wait().catch((e: unknown) => e);
  await expectWatchers(etcd.endpoint, 1);
  await client.close();
  assert.equal(((await waiting) as Error).name, 'ClientClosedError');
  await using other = connect();
  await other.delete(key);
});

test('bad input is refused with InvalidArgumentError', async () => {
  await using client = connect();
  assert.throws(() => new Barrier(client, ''), InvalidArgumentError);
  assert.throws(() => new Barrier(client, 'a/'), InvalidArgumentError);
  assert.throws(() => new Barrier({} as Etcd, 'a'), InvalidArgumentError);
  const barrier = new Barrier(client, `${uniquePrefix('barrier')}input`);
  await assert.rejects(barrier.wait({ timeout: 5 } as object), InvalidArgumentError);
  await assert.rejects(barrier.hold({ lease: 1n } as object), InvalidArgumentError);
  await assert.rejects(barrier.release(null as unknown as object), InvalidArgumentError);
});
