// Lock-delay against a real etcd member: a holder process killed with SIGKILL
// keeps the next holder out until a delay marker has expired; a clean release
// hands the lock on with no delay. Order is judged by etcd's revisions, from a
// watch on everything the lock writes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Etcd, InvalidArgumentError, type Watcher } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { LockNotHeldError, LockTakenError, MAX_LOCK_DELAY_MS, Mutex } from '@etcdkit/mutex';
import { expectQueue, expectQueueLength, track } from './helpers.js';
import type { HolderConfig, HolderMessage } from './lock-delay-child.js';

const CHILD = fileURLToPath(new URL('./lock-delay-child.js', import.meta.url));
const DELAY_MS = 2_000;
const TTL = 2;

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A child process holding the lock `name` on a session of TTL 2 s. */
async function holderProcess(name: string) {
  const config: HolderConfig = { endpoints: [etcd.endpoint], name, ttl: TTL, lockDelay: DELAY_MS };
  const child = spawn(process.execPath, [CHILD, JSON.stringify(config)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.add(child);
  const exited = once(child, 'exit').then(() => children.delete(child));
  const messages: HolderMessage[] = [];
  child.on('message', (m: HolderMessage) => messages.push(m));
  const next = async (type: HolderMessage['type']) =>
    eventually(
      () => {
        const found = messages.find((m) => m.type === type);
        assert.ok(found, `the child said ${type}`);
        return found;
      },
      { timeout: 30_000 },
    );
  const held = (await next('held')) as Extract<HolderMessage, { type: 'held' }>;
  return {
    key: held.key,
    token: BigInt(held.token),
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async release() {
      child.send({ type: 'release' });
      await next('released');
    },
  };
}

interface Seen {
  type: 'put' | 'delete';
  key: string;
  revision: bigint;
  lease: bigint;
  value: { key?: string; token?: string; delayMs?: number } | undefined;
}

/** Every write under `name` (the queue `name/` and the record `name.lock-delay`), in order. */
async function recordWrites(
  client: Etcd,
  name: string,
): Promise<{ seen: Seen[]; watcher: Watcher }> {
  const watcher = await client.watchdir(name);
  const seen: Seen[] = [];
  void (async () => {
    for await (const batch of watcher) {
      for (const e of batch.events) {
        const text = e.type === 'put' ? Buffer.from(e.kv.valueBytes).toString() : '';
        seen.push({
          type: e.type,
          key: e.kv.key,
          revision: e.kv.modRevision,
          lease: e.type === 'put' ? e.kv.lease : 0n,
          value: text.startsWith('{') ? JSON.parse(text) : undefined,
        });
      }
    }
  })().catch(() => undefined);
  return { seen, watcher };
}

function find(seen: Seen[], what: string, match: (s: Seen) => boolean): Seen {
  const found = seen.find(match);
  assert.ok(
    found,
    `${what}: not among ${JSON.stringify(seen, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`,
  );
  return found;
}

function assertOrder(steps: Array<[string, Seen]>): void {
  for (let i = 1; i < steps.length; i++) {
    const [before, a] = steps[i - 1]!;
    const [then, b] = steps[i]!;
    assert.ok(b.revision > a.revision, `${before} (${a.revision}) before ${then} (${b.revision})`);
  }
}

test('lockDelay is checked: whole ms from 0 to the maximum, and no unknown option', () => {
  const client = new Etcd({ endpoints: etcd.endpoint });
  for (const lockDelay of [-1, 1.5, MAX_LOCK_DELAY_MS + 1, Number.NaN, '1000' as never]) {
    assert.throws(() => new Mutex(client, 'job', { lockDelay }), InvalidArgumentError);
  }
  assert.throws(() => new Mutex(client, 'job', { delay: 5 } as never), /unknown option "delay"/);
  assert.equal(new Mutex(client, 'job').lockDelay, 0);
  assert.equal(new Mutex(client, 'job', { lockDelay: 15_000 }).lockDelay, 15_000);
  void client.close();
});

test('a holder killed with SIGKILL: the next holder gets in only after the delay marker expired', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const name = `${uniquePrefix('lock-delay')}crash`;
  const record = `${name}.lock-delay`;
  const { seen, watcher } = await recordWrites(client, name);
  const holder = await holderProcess(name);
  const next = track(new Mutex(client, name, { lockDelay: DELAY_MS }).lock());
  await expectQueueLength(client, name, 2);
  await holder.kill();
  const lock = await next.promise;
  await eventually(() => find(seen, 'the new holder', (s) => s.value?.key === lock.key));
  const steps: Array<[string, Seen]> = [
    [
      'the child records its hold',
      find(seen, 'child record', (s) => s.key === record && s.value?.key === holder.key),
    ],
    [
      "the child's key expires",
      find(seen, 'child key delete', (s) => s.key === holder.key && s.type === 'delete'),
    ],
    ['the delay marker', find(seen, 'marker', (s) => s.key === record && s.lease !== 0n)],
  ];
  const marker = steps[2]![1];
  steps.push(
    [
      'the marker expires',
      find(
        seen,
        'marker delete',
        (s) => s.key === record && s.type === 'delete' && s.revision > marker.revision,
      ),
    ],
    [
      'the next holder records its hold',
      find(seen, 'next record', (s) => s.key === record && s.value?.key === lock.key),
    ],
  );
  assertOrder(steps);
  assert.deepEqual(marker.value, {
    key: holder.key,
    token: String(holder.token),
    delayMs: DELAY_MS,
  });
  assert.ok(lock.token > holder.token);
  // The marker went with its lease, not by anyone's delete.
  assert.equal((await client.timetolive(marker.lease))?.ttl ?? -1, -1);
  await lock.release();
  await expectQueue(client, name, []);
  assert.equal(await client.get(record), undefined, 'a release deletes the record');
  await watcher.cancel();
});

test('a clean release hands the lock on with no delay', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const name = `${uniquePrefix('lock-delay')}clean`;
  const record = `${name}.lock-delay`;
  const { seen, watcher } = await recordWrites(client, name);
  const holder = await holderProcess(name);
  const next = track(new Mutex(client, name, { lockDelay: DELAY_MS }).lock());
  await expectQueueLength(client, name, 2);
  await holder.release();
  const lock = await next.promise;
  await eventually(() => find(seen, 'the new holder', (s) => s.value?.key === lock.key));
  const released = find(seen, 'record delete', (s) => s.key === record && s.type === 'delete');
  const keyGone = find(
    seen,
    'child key delete',
    (s) => s.key === holder.key && s.type === 'delete',
  );
  assert.equal(released.revision, keyGone.revision, 'the release deletes key and record at once');
  assertOrder([
    ['the child records its hold', find(seen, 'child record', (s) => s.value?.key === holder.key)],
    ['the release', released],
    ['the next holder records its hold', find(seen, 'next', (s) => s.value?.key === lock.key)],
  ]);
  assert.deepEqual(
    seen.filter((s) => s.key === record && s.lease !== 0n),
    [],
    'no delay marker',
  );
  await lock.release();
  await holder.kill();
  await expectQueue(client, name, []);
  await watcher.cancel();
});

test('a crash nobody saw: the next contender still waits the delay out; tryLock refuses meanwhile', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const name = `${uniquePrefix('lock-delay')}unseen`;
  const record = `${name}.lock-delay`;
  const holder = await holderProcess(name);
  await holder.kill();
  await expectQueue(client, name, [], 30_000);
  const { seen, watcher } = await recordWrites(client, name);
  const mutex = new Mutex(client, name, { lockDelay: DELAY_MS });
  const refused = await mutex.tryLock().then(
    () => assert.fail('tryLock got the lock during its delay'),
    (err: unknown) => err,
  );
  assert.ok(refused instanceof LockTakenError, String(refused));
  assert.equal(refused.holder, holder.key);
  assert.equal(refused.holderToken, holder.token);
  const lock = await mutex.lock();
  await eventually(() => find(seen, 'the new holder', (s) => s.value?.key === lock.key));
  const marker = find(seen, 'marker', (s) => s.key === record && s.lease !== 0n);
  assertOrder([
    ['the delay marker', marker],
    [
      'the marker expires',
      find(seen, 'marker delete', (s) => s.type === 'delete' && s.key === record),
    ],
    ['the next holder records its hold', find(seen, 'next', (s) => s.value?.key === lock.key)],
  ]);
  // Held now: tryLock refuses as for any held lock.
  await assert.rejects(new Mutex(client, name, { lockDelay: DELAY_MS }).tryLock(), LockTakenError);
  await lock.release();
  await expectQueue(client, name, []);
  await watcher.cancel();
});

test('a lock lost while its holder lives (its key deleted from outside) is followed by the delay too', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const name = `${uniquePrefix('lock-delay')}deleted`;
  const record = `${name}.lock-delay`;
  const { seen, watcher } = await recordWrites(client, name);
  const holderSession = await client.session({ ttl: 30 });
  const waiterSession = await client.session({ ttl: 30 });
  const held = await new Mutex(holderSession, name, { lockDelay: DELAY_MS }).lock();
  const next = track(new Mutex(waiterSession, name, { lockDelay: DELAY_MS }).lock());
  await expectQueueLength(client, name, 2);
  await client.delete(held.key);
  const lock = await next.promise;
  assert.ok(held.signal.aborted, 'the ex-holder was told');
  assert.equal((held.signal.reason as Error).name, 'LockLostError');
  await assert.rejects(held.release(), LockNotHeldError);
  await eventually(() => find(seen, 'the new holder', (s) => s.value?.key === lock.key));
  assertOrder([
    ['the outside delete', find(seen, 'delete', (s) => s.key === held.key && s.type === 'delete')],
    ['the delay marker', find(seen, 'marker', (s) => s.key === record && s.lease !== 0n)],
    [
      'the marker expires',
      find(seen, 'marker delete', (s) => s.key === record && s.type === 'delete'),
    ],
    ['the next holder records its hold', find(seen, 'next', (s) => s.value?.key === lock.key)],
  ]);
  await lock.release();
  assert.equal(await client.get(record), undefined);
  await Promise.all([holderSession.close(), waiterSession.close()]);
  await watcher.cancel();
});
