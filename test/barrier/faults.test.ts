// DoubleBarrier under faults: a participant process SIGKILLed in leave (and
// before it), which holds the others up only until its lease expires; and a
// member of a three-member cluster killed while participants wait.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DoubleBarrier } from '@etcdkit/barrier';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { expectWatchers, track } from '../mutex/helpers.js';

const PARTICIPANT = fileURLToPath(new URL('./participant.js', import.meta.url));
/**
 * The TTL of a participant that gets killed: how long it holds the others up.
 * Short, yet long enough that a loaded machine does not lose it while it lives.
 */
const SHORT_TTL = 5;

interface Child {
  child: ChildProcess;
  /** Resolves with the first line that starts with `prefix`. */
  line(prefix: string): Promise<string>;
}

const children = new Set<ChildProcess>();

function participant(endpoints: string[], key: string, count: number): Child {
  const child = spawn(
    process.execPath,
    [PARTICIPANT, endpoints.join(','), key, String(count), String(SHORT_TTL)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return {
    child,
    async line(prefix) {
      for (;;) {
        const found = out.split('\n').find((l) => l.startsWith(prefix));
        if (found) return found;
        if (child.exitCode !== null) throw new Error(`the participant exited: ${out}`);
        await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
      }
    },
  };
}

async function waiters(client: Etcd, key: string): Promise<string[]> {
  return (await client.readdir(`${key}/waiters/`, { keysOnly: true })).kvs.map((kv) => kv.key);
}

after(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('a participant process killed', () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await startEtcd();
  });
  after(() => etcd?.close());

  test('in leave, as the oldest: the others finish once its lease has expired', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const key = `${uniquePrefix('double-kill')}leave`;
    const sessions = [await client.session({ ttl: 30 }), await client.session({ ttl: 30 })];
    const doomed = participant(etcd.endpoints, key, 3);
    await eventually(async () => assert.equal((await waiters(client, key)).length, 1), {
      timeout: 20_000,
    });
    const others = sessions.map((session) => new DoubleBarrier(client, key, 3, { session }));
    await Promise.all(others.map((b) => b.enter()));
    const doomedKey = (await doomed.line('entered ')).slice('entered '.length);

    doomed.child.stdin!.write('leave\n');
    await doomed.line('leaving');
    // The oldest waits in leave for the newest to go: its one watch is open.
    await expectWatchers(etcd.endpoint, 1);
    doomed.child.kill('SIGKILL');
    await once(doomed.child, 'exit');

    const leaving = others.map((b) =>
      track(
        b.leave().then(async () => {
          assert.equal(await client.get(doomedKey), undefined, 'left only once its key was gone');
        }),
      ),
    );
    await Promise.all(leaving.map((l) => l.promise));
    assert.deepEqual(await waiters(client, key), []);
    await expectWatchers(etcd.endpoint, 0);
  });

  test('before leaving, as the newest: the oldest finishes once its lease has expired', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const key = `${uniquePrefix('double-kill')}entered`;
    const first = new DoubleBarrier(client, key, 3, { session: await client.session({ ttl: 30 }) });
    const second = new DoubleBarrier(client, key, 3, {
      session: await client.session({ ttl: 30 }),
    });
    const firstIn = first.enter();
    await eventually(async () => assert.equal((await waiters(client, key)).length, 1));
    const secondIn = second.enter();
    await eventually(async () => assert.equal((await waiters(client, key)).length, 2));
    const doomed = participant(etcd.endpoints, key, 3);
    await Promise.all([firstIn, secondIn]);
    const doomedKey = (await doomed.line('entered ')).slice('entered '.length);
    doomed.child.kill('SIGKILL');
    await once(doomed.child, 'exit');

    const firstOut = track(
      first.leave().then(async () => {
        assert.equal(await client.get(doomedKey), undefined, 'left only once its key was gone');
      }),
    );
    await second.leave();
    await firstOut.promise;
    assert.deepEqual(await waiters(client, key), []);
    assert.equal(await client.get(`${key}/ready`), undefined, 'the last out deleted ready');
  });
});

describe('a member of a three-member cluster killed', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcd({ members: 3 });
  });
  after(() => cluster?.close());

  test('while two wait in enter: all three enter and leave together', async () => {
    const key = `${uniquePrefix('double-member')}kill`;
    const clients = [0, 1, 2].map(() => new Etcd({ endpoints: cluster.endpoints }));
    try {
      const barriers = await Promise.all(
        clients.map(
          async (c) => new DoubleBarrier(c, key, 3, { session: await c.session({ ttl: 15 }) }),
        ),
      );
      const [a, b, c] = barriers as [DoubleBarrier, DoubleBarrier, DoubleBarrier];
      const entering = [track(a.enter()), track(b.enter())];
      await eventually(async () => assert.equal((await waiters(clients[0]!, key)).length, 2), {
        timeout: 15_000,
      });
      // The member the clients talk to first (and perhaps the leader) goes.
      await cluster.members[0]!.kill('SIGKILL');
      assert.deepEqual(
        entering.map((e) => e.settled),
        [false, false],
        'no one entered with two of three in',
      );
      await c.enter();
      await Promise.all(entering.map((e) => e.promise));
      assert.ok(barriers.every((x) => x.entered));
      await Promise.all(barriers.map((x) => x.leave()));
      assert.deepEqual(await waiters(clients[1]!, key), []);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
