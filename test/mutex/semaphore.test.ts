// Semaphore(n) against a real etcd member: at most n holders, served in arrival
// order, and no queue key left by a contender that gives up.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, InvalidArgumentError, Op, type Session } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, LockTimeoutError, Semaphore } from '@etcdkit/mutex';
import {
  assertIncreasing,
  expectQueue,
  expectQueueLength,
  expectWatchers,
  Holders,
  since,
  track,
} from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint });
}

function semName(label: string): string {
  return `${uniquePrefix('semaphore')}${label}`;
}

const hex = (session: Session): string => session.lease.toString(16);

const atMost =
  (permits: number) =>
  (_kind: string, held: string[]): boolean =>
    held.length < permits;

test('the limit must be a whole number >= 1', () => {
  const client = connect();
  for (const permits of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    assert.throws(() => new Semaphore(client, 'jobs', permits), InvalidArgumentError, `${permits}`);
  }
  assert.throws(
    () => new Semaphore(client, 'jobs', '2' as unknown as number),
    InvalidArgumentError,
  );
  assert.throws(() => new Semaphore(client, 'jobs', 0), /limit must be a whole number >= 1/);
  const semaphore = new Semaphore(client, 'jobs', 3);
  assert.equal(semaphore.limit, 3);
  assert.equal(semaphore.name, 'jobs');
  void client.close();
});

test('n holders at once; the others wait and are served in arrival order', async () => {
  await using client = connect();
  await expectWatchers(etcd.endpoint, 0);
  const sessions = await Promise.all([0, 1, 2, 3, 4].map(() => client.session({ ttl: 30 })));
  const name = semName('fifo');
  const holders = new Holders(atMost(2));
  const locks = new Map<string, Lock>();
  const start = (i: number) => {
    const id = `c${i}`;
    return track(
      new Semaphore(sessions[i]!, name, 2).acquire().then((lock) => {
        holders.acquired(id, 'permit');
        locks.set(id, lock);
        return lock;
      }),
    );
  };
  const c0 = await start(0).promise;
  const c1 = await start(1).promise;
  assert.equal(c0.key, `${name}/${hex(sessions[0]!)}`);
  assert.equal(c1.held && c0.held, true, 'two permits are held at once');
  const waiting = [];
  for (const i of [2, 3, 4]) {
    waiting.push(start(i));
    await expectQueueLength(client, name, i + 1);
  }
  await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
  assert.equal(
    waiting.some((w) => w.settled),
    false,
  );
  const queued = (await expectQueueLength(client, name, 5)).map((k) => k.key);
  const release = async (id: string) => {
    holders.releasing(id);
    await locks.get(id)!.release();
  };
  await release('c0');
  await waiting[0]!.promise;
  await release('c1');
  await waiting[1]!.promise;
  await release('c2');
  await waiting[2]!.promise;
  await release('c3');
  await release('c4');
  assert.deepEqual(holders.violations, []);
  assert.deepEqual(holders.order, ['c0', 'c1', 'c2', 'c3', 'c4']);
  const served = holders.order.map((id) => locks.get(id)!);
  assert.deepEqual(
    served.map((l) => l.key),
    queued,
  );
  assertIncreasing(served.map((l) => l.token));
  await expectQueue(client, name, []);
  await Promise.all(sessions.map((s) => s.close()));
});

test('many contenders of one client never exceed n holders, and each permit is fenced', async (t) => {
  await using client = connect();
  const name = semName('busy');
  const resource = `${name}-resource`;
  const permits = 3;
  const holders = new Holders(atMost(permits));
  const semaphore = new Semaphore(client, name, permits);
  const fenced: boolean[] = [];
  const begin = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      for (let round = 0; round < 3; round++) {
        const id = `c${i}.${round}`;
        const lock = await semaphore.acquire();
        holders.acquired(id, 'permit');
        const r = await client
          .txn()
          .if(lock.guard())
          .success(Op.put(`${resource}/${i}`, round))
          .commit();
        fenced.push(r.succeeded);
        await sleep(5 + ((i * 7 + round) % 10));
        holders.releasing(id);
        await lock.release();
      }
    }),
  );
  t.diagnostic(
    `30 acquisitions, at most ${holders.max} held at once, in ${since(begin)} ms (permits: ${permits})`,
  );
  assert.deepEqual(holders.violations, []);
  assert.ok(holders.max <= permits);
  assert.equal(fenced.length, 30);
  assert.ok(fenced.every(Boolean), 'every guarded write of a holder commits');
  await expectQueue(client, name, []);
});

test('an aborted or timed-out acquire leaves no key behind', async () => {
  await using client = connect();
  const other = await client.session({ ttl: 30 });
  const name = semName('give-up');
  const holder = await new Semaphore(client, name, 1).acquire();
  await assert.rejects(new Semaphore(other, name, 1).acquire({ timeout: 200 }), LockTimeoutError);
  await expectQueue(client, name, [holder.key]);
  const controller = new AbortController();
  const pending = new Semaphore(other, name, 1).acquire({ signal: controller.signal });
  await expectQueueLength(client, name, 2);
  const reason = new Error('not any more');
  controller.abort(reason);
  await assert.rejects(pending, (err) => err === reason);
  await expectQueue(client, name, [holder.key]);
  await holder.release();
  await holder.release();
  await expectQueue(client, name, []);
  await other.close();
});
