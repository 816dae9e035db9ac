// `etcdkit barrier`: hold, release and wait on a barrier; enter a double
// barrier, run a command once all are in, and leave once all are done.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DoubleBarrier } from '@etcdkit/barrier';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { expectWatchers, track } from '../mutex/helpers.js';
import { cli as runCli } from './run-cli.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.close());

const cli = (...args: string[]) => runCli(etcd.endpoint, ['barrier', ...args]);

async function waiters(client: Etcd, key: string): Promise<string[]> {
  return (await client.readdir(`${key}/waiters/`, { keysOnly: true })).kvs.map((kv) => kv.key);
}

describe('etcdkit barrier', () => {
  test('hold, a second hold fails, wait ends with the release', async () => {
    const key = `${uniquePrefix('cli-barrier')}gate`;
    const held = await cli('hold', key).done;
    assert.equal(held.code, 0, held.err);
    assert.match(held.err, /holding/);
    const again = await cli('hold', key).done;
    assert.equal(again.code, 1);
    assert.match(again.err, /held already/);

    const wait = cli('wait', key);
    const waiting = track(wait.done);
    await expectWatchers(etcd.endpoint, 1);
    assert.equal(waiting.settled, false, 'wait blocks while the barrier is held');
    const released = await cli('release', key, '--json').done;
    assert.equal(released.code, 0);
    assert.deepEqual(JSON.parse(released.err), { event: 'released', key, held: 'true' });
    const passed = await wait.done;
    assert.equal(passed.code, 0, passed.err);
    assert.match((await cli('release', key).done).err, /was not held/);
    assert.equal((await cli('wait', key).done).code, 0, 'not held: wait ends at once');
  });

  test('enter --count 2 -- COMMAND runs the command only once both are in', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const key = `${uniquePrefix('cli-barrier')}double`;
    const command = ['--', 'sh', '-c', 'echo "in $ETCDKIT_PARTICIPANT_KEY"; exit 3'];
    const first = cli('enter', key, '--count', '2', ...command);
    await eventually(async () => assert.equal((await waiters(client, key)).length, 1), {
      timeout: 20_000,
    });
    await expectWatchers(etcd.endpoint, 1);
    const [participant] = await waiters(client, key);
    assert.doesNotMatch(first.errors(), /entered/, 'one of two is not through');
    const second = cli('enter', key, '--count', '2', ...command);
    const [a, b] = await Promise.all([first.done, second.done]);
    assert.deepEqual([a.code, b.code], [3, 3], `${a.err}\n${b.err}`);
    assert.equal(a.out, `in ${participant}\n`, 'the command saw its participant key');
    assert.match(b.out, new RegExp(`^in ${key}/waiters/\\d+\n$`));
    for (const r of [a, b]) assert.match(r.err, /entered[\s\S]*leaving[\s\S]*left/);
    assert.deepEqual(await waiters(client, key), []);
  });

  test('enter with no command stays in until SIGINT, then leaves with the others', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const key = `${uniquePrefix('cli-barrier')}signal`;
    const mine = new DoubleBarrier(client, key, 2);
    const participant = cli('enter', key, '--count', '2', '--ttl', '5', '--json');
    await eventually(async () => assert.equal((await waiters(client, key)).length, 1), {
      timeout: 20_000,
    });
    await mine.enter();
    await eventually(() => assert.match(participant.errors(), /"event":"entered"/), {
      timeout: 20_000,
    });
    // The oldest (the command) waits in leave until this one leaves.
    participant.child.kill('SIGINT');
    await eventually(() => assert.match(participant.errors(), /"event":"leaving"/), {
      timeout: 20_000,
    });
    await expectWatchers(etcd.endpoint, 1);
    const done = track(participant.done);
    assert.equal(done.settled, false, 'it waits for the other participant to leave');
    await mine.leave();
    const r = await participant.done;
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /"event":"left"/);
    assert.deepEqual(await waiters(client, key), []);
  });

  test('mistakes in the command line exit 2', async () => {
    const key = `${uniquePrefix('cli-barrier')}usage`;
    for (const args of [
      ['enter', key],
      ['enter', key, '--count', '0'],
      ['enter', key, '--count', 'two'],
      ['hold', key, '--count', '2'],
      ['wait', key, '--', 'true'],
      ['open', key],
      ['hold'],
    ]) {
      const r = await cli(...args).done;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /usage/);
    }
  });
});
