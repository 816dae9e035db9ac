// RWMutex against a real etcd member: readers share, a writer holds alone, and a
// reader that comes after a waiting writer waits for it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, type Session } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, LockTimeoutError, RWMutex } from '@etcdkit/mutex';
import {
  assertIncreasing,
  expectQueue,
  expectQueueLength,
  expectWatchers,
  Holders,
  track,
} from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

type Kind = 'read' | 'write';

/** A reader may join other readers; a writer only an empty room. */
const readersOrOneWriter = (kind: Kind, held: Kind[]): boolean =>
  kind === 'read' ? !held.includes('write') : held.length === 0;

function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint });
}

function lockName(label: string): string {
  return `${uniquePrefix('rwmutex')}${label}`;
}

const hex = (session: Session): string => session.lease.toString(16);

async function sessions(client: Etcd, count: number): Promise<Session[]> {
  return Promise.all(Array.from({ length: count }, () => client.session({ ttl: 30 })));
}

/** Starts an acquisition that reports to `holders` the moment it resolves. */
function acquire(
  holders: Holders<Kind>,
  id: string,
  kind: Kind,
  rw: RWMutex,
): ReturnType<typeof track<Lock>> {
  const pending = kind === 'read' ? rw.readLock() : rw.writeLock();
  return track(
    pending.then((lock) => {
      holders.acquired(id, kind);
      return lock;
    }),
  );
}

async function release(holders: Holders<Kind>, id: string, lock: Lock): Promise<void> {
  holders.releasing(id);
  await lock.release();
}

test('readers share the lock; their keys live under <name>/read/', async () => {
  await using client = connect();
  const [s1, s2] = await sessions(client, 2);
  const name = lockName('share');
  const holders = new Holders<Kind>(readersOrOneWriter);
  const r1 = await acquire(holders, 'r1', 'read', new RWMutex(s1!, name)).promise;
  const r2 = await acquire(holders, 'r2', 'read', new RWMutex(s2!, name)).promise;
  assert.equal(r1.key, `${name}/read/${hex(s1!)}`);
  assert.equal(r2.key, `${name}/read/${hex(s2!)}`);
  assert.equal(r1.held && r2.held, true);
  assert.ok(r2.token > r1.token);
  assert.equal(holders.max, 2);
  await release(holders, 'r1', r1);
  await release(holders, 'r2', r2);
  assert.deepEqual(holders.violations, []);
  await expectQueue(client, name, []);
  await Promise.all([s1!.close(), s2!.close()]);
});

test('a writer holds alone: readers and writers behind it wait, and are served in order', async () => {
  await using client = connect();
  await expectWatchers(etcd.endpoint, 0);
  const [s1, s2, s3] = await sessions(client, 3);
  const name = lockName('exclusive');
  const holders = new Holders<Kind>(readersOrOneWriter);
  const w1 = await acquire(holders, 'w1', 'write', new RWMutex(s1!, name)).promise;
  assert.equal(w1.key, `${name}/write/${hex(s1!)}`);
  const reader = acquire(holders, 'r', 'read', new RWMutex(s2!, name));
  await expectQueueLength(client, name, 2);
  const w2 = acquire(holders, 'w2', 'write', new RWMutex(s3!, name));
  await expectQueueLength(client, name, 3);
  await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
  assert.equal(reader.settled || w2.settled, false);
  await release(holders, 'w1', w1);
  const r = await reader.promise;
  await release(holders, 'r', r);
  const last = await w2.promise;
  await release(holders, 'w2', last);
  assert.deepEqual(holders.violations, []);
  assert.deepEqual(holders.order, ['w1', 'r', 'w2']);
  assertIncreasing([w1.token, r.token, last.token]);
  await expectQueue(client, name, []);
  await Promise.all([s1!.close(), s2!.close(), s3!.close()]);
});

test('a reader that arrives after a waiting writer waits for that writer (no writer starvation)', async () => {
  await using client = connect();
  await expectWatchers(etcd.endpoint, 0);
  const [s1, s2, s3] = await sessions(client, 3);
  const name = lockName('no-starvation');
  const holders = new Holders<Kind>(readersOrOneWriter);
  const r1 = await acquire(holders, 'r1', 'read', new RWMutex(s1!, name)).promise;
  const writer = acquire(holders, 'w', 'write', new RWMutex(s2!, name));
  await expectQueueLength(client, name, 2);
  await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
  // Only a reader holds the lock, yet the late reader queues behind the writer.
  const late = acquire(holders, 'r2', 'read', new RWMutex(s3!, name));
  await expectQueueLength(client, name, 3);
  assert.equal(late.settled, false);
  await release(holders, 'r1', r1);
  const w = await writer.promise;
  await release(holders, 'w', w);
  const r2 = await late.promise;
  await release(holders, 'r2', r2);
  assert.deepEqual(holders.violations, []);
  assert.deepEqual(holders.order, ['r1', 'w', 'r2']);
  await expectQueue(client, name, []);
  await Promise.all([s1!.close(), s2!.close(), s3!.close()]);
});

test('an aborted or timed-out readLock or writeLock leaves no key behind', async () => {
  await using client = connect();
  const [s1, s2] = await sessions(client, 2);
  const name = lockName('give-up');
  const writer = await new RWMutex(s1!, name).writeLock();
  await assert.rejects(new RWMutex(s2!, name).readLock({ timeout: 200 }), LockTimeoutError);
  await expectQueue(client, name, [writer.key]);
  const controller = new AbortController();
  const pending = new RWMutex(s2!, name).writeLock({ signal: controller.signal });
  await expectQueueLength(client, name, 2);
  const reason = new Error('stop waiting');
  controller.abort(reason);
  await assert.rejects(pending, (err) => err === reason);
  await expectQueue(client, name, [writer.key]);
  await writer.release();
  await expectQueue(client, name, []);
  await Promise.all([s1!.close(), s2!.close()]);
});
