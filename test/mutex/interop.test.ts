// Interop with `etcdctl lock` (etcd's Go concurrency.Mutex) on the same names:
// each side waits for the other, in one FIFO queue.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, findEtcdctl, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { LockTakenError, Mutex } from '@etcdkit/mutex';
import { expectQueue, expectQueueLength, expectWatchers, since, track } from './helpers.js';

let etcd: EtcdCluster;
let etcdctlBin: string;
const children = new Set<ChildProcess>();

before(async () => {
  etcdctlBin = findEtcdctl();
  etcd = await startEtcd();
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await etcd?.close();
});

function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint });
}

interface Etcdctl {
  readonly child: ChildProcess;
  /** Everything printed on stdout so far. */
  readonly stdout: string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  readonly hasExited: boolean;
}

/** Runs `etcdctl lock <args>` against the test member, collecting its output. */
function etcdctlLock(...args: string[]): Etcdctl {
  const child = spawn(etcdctlBin, [`--endpoints=${etcd.endpoint}`, 'lock', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  let hasExited = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => {
    hasExited = true;
    children.delete(child);
    if (code !== 0) throw new Error(`etcdctl lock exited with ${code}: ${stderr}`);
    return code as number | null;
  });
  exited.catch(() => undefined);
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get hasExited() {
      return hasExited;
    },
  };
}

/** Resolves with the first line etcdctl prints. */
async function firstLine(ctl: Etcdctl): Promise<string> {
  while (!ctl.stdout.includes('\n')) {
    if (ctl.hasExited) throw new Error(`etcdctl exited before printing: ${ctl.stdout}`);
    await once(ctl.child.stdout!, 'data');
  }
  return ctl.stdout.split('\n')[0]!;
}

test('etcdctl lock holds, etcdkit waits until etcdctl lets go', async (t) => {
  await using client = connect();
  await using other = await client.session({ ttl: 30 });
  await expectWatchers(etcd.endpoint, 0);
  const name = `${uniquePrefix('interop')}etcdctl-holds`;
  const ctl = etcdctlLock(name);
  const key = await firstLine(ctl);
  // etcdctl names its key <name>/<lease in hex>, as etcdkit does.
  const match = /\/([0-9a-f]+)$/.exec(key);
  assert.ok(key.startsWith(`${name}/`) && match, key);
  const held = await client.get(key);
  assert.ok(held, 'the key etcdctl printed exists');
  assert.equal(held.lease, BigInt(`0x${match[1]}`));

  let etcdctlReleased = false;
  let ctlKeyAtAcquire: unknown = 'unchecked';
  const mine = track(
    new Mutex(client, name).lock().then(async (lock) => {
      ctlKeyAtAcquire = await client.get(key);
      assert.equal(etcdctlReleased, true, 'acquired only after etcdctl was told to let go');
      return lock;
    }),
  );
  await expectQueueLength(client, name, 2);
  await expectWatchers(etcd.endpoint, 1);
  assert.equal(mine.settled, false, 'etcdkit waits while etcdctl holds');
  const err = await new Mutex(other, name).tryLock().catch((e: unknown) => e);
  assert.ok(err instanceof LockTakenError, String(err));
  assert.equal(err.holder, key);
  assert.equal(err.holderToken, held.createRevision);

  etcdctlReleased = true;
  const start = performance.now();
  ctl.child.kill('SIGINT');
  assert.equal(await ctl.exited, 0);
  const lock = await mine.promise;
  t.diagnostic(`etcdkit got the lock ${since(start)} ms after etcdctl was interrupted`);
  assert.equal(ctlKeyAtAcquire, undefined, 'etcdctl key was gone when etcdkit got the lock');
  assert.ok(lock.token > held.createRevision);
  await lock.release();
  await expectQueue(client, name, []);
});

test('etcdkit holds; `etcdctl lock NAME echo ok` prints only after the release', async (t) => {
  await using client = connect();
  await expectWatchers(etcd.endpoint, 0);
  const name = `${uniquePrefix('interop')}etcdkit-holds`;
  const lock = await new Mutex(client, name).lock();
  const ctl = etcdctlLock(name, 'echo', 'ok');
  const [, waiting] = await expectQueueLength(client, name, 2);
  assert.ok(waiting && waiting.createRevision > lock.token, 'etcdctl queued behind the holder');
  assert.match(waiting.key, new RegExp(`^${name}/[0-9a-f]+$`));
  // etcdctl is blocked on its watch of the holder's key.
  await expectWatchers(etcd.endpoint, 2); // plus the etcdkit client's view of the queue, which its holder follows
  assert.equal(ctl.stdout, '', 'etcdctl ran nothing while etcdkit holds the lock');
  assert.equal(ctl.hasExited, false);
  const start = performance.now();
  await lock.release();
  assert.equal(await ctl.exited, 0);
  t.diagnostic(`etcdctl ran its command and exited ${since(start)} ms after the release`);
  assert.equal(ctl.stdout.trim(), 'ok');
  await expectQueue(client, name, []);
});

test('one FIFO queue across both: etcdkit, then etcdctl, then etcdkit again', async () => {
  await using client = connect();
  await using second = await client.session({ ttl: 30 });
  await expectWatchers(etcd.endpoint, 0);
  const name = `${uniquePrefix('interop')}mixed`;
  const first = await new Mutex(client, name).lock();
  const ctl = etcdctlLock(name, 'echo', 'ok');
  const [, ctlKey] = await expectQueueLength(client, name, 2);
  let atAcquire: { ctlKey: unknown; ctlOutput: string } | undefined;
  const last = track(
    new Mutex(second, name).lock().then(async (lock) => {
      atAcquire = { ctlKey: await client.get(ctlKey!.key), ctlOutput: ctl.stdout };
      return lock;
    }),
  );
  const keys = await expectQueueLength(client, name, 3);
  await expectWatchers(etcd.endpoint, 2); // etcdctl's, and the etcdkit client's one view of the queue
  assert.equal(keys[2]!.lease, second.lease);
  await first.release();
  assert.equal(await ctl.exited, 0);
  assert.equal(ctl.stdout.trim(), 'ok');
  const lock = await last.promise;
  // etcdctl ran its command and deleted its key before the etcdkit waiter got in.
  assert.deepEqual(atAcquire, { ctlKey: undefined, ctlOutput: 'ok\n' });
  assert.ok(lock.token > keys[1]!.createRevision);
  await lock.release();
  await expectQueue(client, name, []);
});
