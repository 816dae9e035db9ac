// `etcdkit group`: join until Ctrl-C or while a command runs, ls, watch and
// owner, against a real etcd; a duplicate ID and a lost lease end as the
// other hold commands end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Running, cli as runCli } from './run-cli.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
/** Every etcdkit started here: a failed test must not leave one running. */
const started: Running[] = [];
after(async () => {
  for (const r of started) r.child.kill('SIGKILL');
  await Promise.all(started.map((r) => r.done));
  await etcd?.close();
});

/** A loaded machine may take many seconds to start a Node process. */
const STARTED = { timeout: 60_000 };
const cli = (args: string[]) => {
  const running = runCli(etcd.endpoint, args);
  started.push(running);
  return running;
};
const run = (...args: string[]) => cli(args).done;

describe('etcdkit group', () => {
  test('join until Ctrl-C; ls, owner and watch see the member come and go', async () => {
    const g = uniquePrefix('cli-group').slice(0, -1);
    const watcher = cli(['group', 'watch', g]);
    const member = cli([
      'group',
      'join',
      g,
      'w1',
      '--capability',
      'zone=a',
      '--capability',
      'gpu=no',
    ]);
    await eventually(() => assert.match(member.errors(), /joined .* as w1/), STARTED);
    const listed = await run('group', 'ls', g, '--json');
    assert.equal(listed.code, 0);
    const [m] = listed.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; capabilities: Record<string, string> });
    assert.deepEqual(m, { ...m, id: 'w1', capabilities: { zone: 'a', gpu: 'no' } });
    assert.equal((await run('group', 'ls', g)).out, 'w1\tzone=a gpu=no\n');
    const owner = await run('group', 'owner', g, 'job-42');
    assert.deepEqual([owner.code, owner.out], [0, 'w1\n']);

    // The same ID again is refused.
    const dup = await run('group', 'join', g, 'w1');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /ETCDKIT_MEMBER_EXISTS/);

    // The watch has seen the join before the member leaves.
    await watcher.output((out) => out.includes('joined\tw1'));
    member.child.kill('SIGINT');
    assert.equal((await member.done).code, 0);
    await watcher.output((out) => out.includes('left\tw1'));
    watcher.child.kill('SIGINT');
    const watched = await watcher.done;
    assert.equal(watched.code, 0);
    assert.deepEqual(watched.out.trim().split('\n'), [
      'joined\tw1\tzone=a gpu=no',
      'left\tw1\tzone=a gpu=no',
    ]);
    assert.equal((await run('group', 'ls', g)).out, '');
    const none = await run('group', 'owner', g, 'job-42');
    assert.equal(none.code, 1);
    assert.match(none.err, /no members/);
  });

  test('join -- COMMAND runs it as a member, passes its exit code, and leaves', async () => {
    const g = uniquePrefix('cli-group-cmd').slice(0, -1);
    const r = await run(
      'group',
      'join',
      g,
      'm1',
      '--',
      process.execPath,
      '-e',
      'console.log(process.env.ETCDKIT_GROUP, process.env.ETCDKIT_MEMBER_ID); process.exit(3)',
    );
    assert.equal(r.code, 3, r.err);
    assert.equal(r.out, `${g} m1\n`);
    assert.equal((await run('group', 'ls', g)).out, '');
  });

  test('a lost membership stops the command and exits 75', async () => {
    const g = uniquePrefix('cli-group-lost').slice(0, -1);
    const member = cli([
      'group',
      'join',
      g,
      'm1',
      '--ttl',
      '3',
      '--json',
      '--',
      process.execPath,
      '-e',
      'setTimeout(() => {}, 120000)',
    ]);
    const joined = await eventually(() => {
      const line = member.errors().split('\n')[0]!;
      return JSON.parse(line) as { event: string; lease: string };
    }, STARTED);
    assert.equal(joined.event, 'joined');
    await using client = new Etcd({ endpoints: etcd.endpoint });
    await client.revoke(BigInt(`0x${joined.lease}`));
    const r = await member.done;
    assert.equal(r.code, 75, r.err);
    assert.match(r.err, /"event":"lost"/);
  });

  test('mistakes in the command line exit 2', async () => {
    for (const args of [
      ['group'],
      ['group', 'ls'],
      ['group', 'owner', 'g'],
      ['group', 'ls', 'g', '--capability', 'a=b'],
      ['group', 'join', 'g', 'm', '--capability', 'novalue'],
      ['group', 'join', 'g', 'bad/id'],
    ]) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
  });
});
