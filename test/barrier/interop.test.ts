// Interop with etcd's Go contrib/recipes (3.4) on the same keys: a Barrier
// held by one side and waited on by the other, and double barriers whose
// participants are a mix of Go and etcdkit processes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Barrier, BarrierHeldError, DoubleBarrier } from '@etcdkit/barrier';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { expectWatchers, track } from '../mutex/helpers.js';
import { buildGoBarrier, type GoRun, killGoRuns, runGo } from './go-barrier.js';

let etcd: EtcdCluster;
let goBin: string;

before(
  async () => {
    const [built, started] = await Promise.all([buildGoBarrier(), startEtcd()]);
    etcd = started;
    goBin = built.path;
    if (built.builtMs !== undefined) console.log(`# built the Go program in ${built.builtMs} ms`);
  },
  { timeout: 20 * 60_000 },
);
after(async () => {
  killGoRuns();
  await etcd?.close();
});

const connect = () => new Etcd({ endpoints: etcd.endpoint });
const go = (...args: string[]) => runGo(goBin, etcd.endpoint, args);

async function expectExit(run: GoRun, code = 0): Promise<void> {
  const { code: actual, stderr } = await run.exited;
  assert.equal(actual, code, stderr);
}

/** The participant keys under `<key>/waiters/`, oldest first, with their leases. */
async function waiters(client: Etcd, key: string) {
  const r = await client.readdir(`${key}/waiters/`, {
    keysOnly: true,
    sortTarget: 'modRevision',
    sortOrder: 'ascend',
  });
  return r.kvs.map((kv) => ({ key: kv.key, lease: kv.lease }));
}

async function expectWaiters(client: Etcd, key: string, count: number) {
  return eventually(
    async () => {
      const keys = await waiters(client, key);
      assert.equal(keys.length, count);
      return keys;
    },
    { timeout: 20_000, interval: 50 },
  );
}

/** Starts a Go participant and resolves once its key is under waiters/ (it printed its lease). */
async function goParticipant(key: string, count: number) {
  const run = go('double', key, String(count));
  await eventually(
    () => assert.ok(run.lines.some((l) => l.startsWith('lease ')) || run.hasExited),
    {
      timeout: 20_000,
    },
  );
  const lease = BigInt(`0x${run.lines.find((l) => l.startsWith('lease '))!.slice(6)}`);
  return {
    run,
    lease,
    entered: () => run.lines.includes('entered'),
    left: () => run.lines.includes('left'),
  };
}

test('Go holds, etcdkit waits, Go releases', async () => {
  await using client = connect();
  const key = `${uniquePrefix('go-barrier')}go-holds`;
  const hold = go('hold', key);
  await expectExit(hold);
  assert.deepEqual(hold.lines, ['held']);
  const stored = await client.get(key);
  assert.ok(stored, "Go's barrier key is the key itself");
  assert.deepEqual([stored.valueBytes.length, stored.lease], [0, 0n]);

  const barrier = new Barrier(client, key);
  assert.equal(await barrier.held(), true);
  const held = await barrier.hold().catch((e: unknown) => e);
  assert.ok(held instanceof BarrierHeldError, 'etcdkit cannot hold what Go holds');
  let released = false;
  const waiting = track(
    barrier.wait().then(() => assert.equal(released, true, 'passed before the release')),
  );
  await expectWatchers(etcd.endpoint, 1);
  assert.equal(waiting.settled, false);
  released = true;
  await expectExit(go('release', key));
  await waiting.promise;
});

test('etcdkit holds, Go waits until etcdkit releases', async () => {
  await using client = connect();
  const key = `${uniquePrefix('go-barrier')}etcdkit-holds`;
  const barrier = new Barrier(client, key);
  await barrier.hold();
  const again = go('hold', key);
  await expectExit(again, 1);
  assert.match((await again.exited).stderr, /key already exists/);
  // Go's Wait must read the store while the hold is its newest write (see the README).
  const wait = go('wait', key);
  await expectWatchers(etcd.endpoint, 1);
  assert.equal(wait.hasExited, false, 'Go waits while etcdkit holds');
  assert.equal(await barrier.release(), true);
  await expectExit(wait);
  assert.deepEqual(wait.lines, ['waited']);
});

test('a double barrier of Go and etcdkit participants, a Go one oldest', async () => {
  await using client = connect();
  const key = `${uniquePrefix('go-double')}go-first`;
  const mine = [new DoubleBarrier(client, key, 4), new DoubleBarrier(client, key, 4)] as const;
  const goFirst = await goParticipant(key, 4);
  await expectWaiters(client, key, 1);
  const secondIn = track(mine[0].enter());
  await expectWaiters(client, key, 2);
  const goThird = await goParticipant(key, 4);
  await expectWaiters(client, key, 3);
  assert.deepEqual(
    [goFirst.entered(), secondIn.settled, goThird.entered()],
    [false, false, false],
    'no one is through with three of four in',
  );
  await mine[1].enter();
  await secondIn.promise;
  await Promise.all([goFirst.run.printed('entered'), goThird.run.printed('entered')]);

  const secondOut = track(mine[0].leave());
  goFirst.run.child.stdin!.write('leave\n');
  goThird.run.child.stdin!.write('leave\n');
  // The oldest (Go) stays until the others are gone; the rest delete their keys at once.
  const staying = await expectWaiters(client, key, 2);
  assert.deepEqual(
    staying.map((w) => w.key),
    (await waiters(client, key)).map((w) => w.key),
  );
  assert.equal(staying[0]!.lease, goFirst.lease, 'the Go participant, oldest, stays');
  assert.equal(staying[1]!.key, mine[1].participantKey, 'and the last one in, not yet leaving');
  assert.deepEqual([goFirst.left(), secondOut.settled, goThird.left()], [false, false, false]);
  await mine[1].leave();
  await secondOut.promise;
  await Promise.all([expectExit(goFirst.run), expectExit(goThird.run)]);
  assert.ok(goFirst.left() && goThird.left());
  assert.deepEqual(await waiters(client, key), []);
  assert.equal(await client.get(`${key}/ready`), undefined, 'the last out deleted ready');
});

test('a double barrier of Go and etcdkit participants, an etcdkit one oldest, a Go one last in', async () => {
  await using client = connect();
  const key = `${uniquePrefix('go-double')}etcdkit-first`;
  const mine = new DoubleBarrier(client, key, 3);
  const firstIn = track(mine.enter());
  await expectWaiters(client, key, 1);
  const goSecond = await goParticipant(key, 3);
  await expectWaiters(client, key, 2);
  assert.deepEqual([firstIn.settled, goSecond.entered()], [false, false]);
  const goLast = await goParticipant(key, 3);
  await firstIn.promise;
  await Promise.all([goSecond.run.printed('entered'), goLast.run.printed('entered')]);
  assert.ok(await client.get(`${key}/ready`), 'the Go participant that came last put ready');

  goSecond.run.child.stdin!.write('leave\n');
  goLast.run.child.stdin!.write('leave\n');
  const [staying] = await expectWaiters(client, key, 1);
  assert.equal(staying!.key, mine.participantKey, 'the etcdkit participant, oldest, stays');
  assert.deepEqual([goSecond.left(), goLast.left()], [false, false], 'Go waits for the oldest');
  await mine.leave();
  await Promise.all([expectExit(goSecond.run), expectExit(goLast.run)]);
  assert.deepEqual(await waiters(client, key), []);
  assert.equal(await client.get(`${key}/ready`), undefined);
});
