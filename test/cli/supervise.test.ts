// `etcdkit lock` and `etcdkit elect` running a command: exit codes, what the
// command is told, and that it never runs on without the lock or leadership.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { type CliOptions, type Running, cli as runCli, running } from './run-cli.js';

let etcd: EtcdCluster;
let client: Etcd<string>;
const started: number[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'etcdkit-cli-'));
before(async () => {
  etcd = await startEtcd();
  client = new Etcd({ endpoints: etcd.endpoint, codec: 'string' });
});
after(async () => {
  // Whatever a failed test left running.
  for (const pid of started) {
    if (running(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(scratch, { recursive: true, force: true });
  await client.close();
  await etcd.close();
});

const cli = (args: string[], options?: CliOptions) => runCli(etcd.endpoint, args, options);
const lockName = (label: string) => uniquePrefix(label).slice(0, -1);
/** A command that prints its pid, then sleeps; `prelude` runs first in the same shell. */
const sleeper = (prelude = '') => ['sh', '-c', `${prelude} echo $$; exec sleep 30`];

/** The pid the command printed on its first line. */
async function childPid(run: Running): Promise<number> {
  const out = await run.output((o) => /^\d+\n/.test(o));
  const pid = Number(out.split('\n')[0]);
  started.push(pid);
  return pid;
}

/** The one key under `<name>/`: the lock holder's or the leader's. */
async function holder(name: string) {
  const { kvs } = await client.readdir(`${name}/`);
  assert.equal(kvs.length, 1, `one key under ${name}/`);
  return kvs[0]!;
}

const gone = (pid: number) => eventually(() => assert.ok(!running(pid), `${pid} still runs`));

describe('etcdkit lock / elect running a command', () => {
  test('a command ended by a signal exits 128+N: a segfault is 139', async () => {
    const segv = await cli([
      'lock',
      lockName('cli-segv'),
      '--',
      'sh',
      '-c',
      'ulimit -c 0; kill -SEGV $$',
    ]).done;
    assert.equal(segv.code, 139, segv.err);
    const usr1 = await cli(['elect', lockName('cli-usr1'), 'n1', '--', 'sh', '-c', 'kill -USR1 $$'])
      .done;
    assert.equal(usr1.code, 138, usr1.err);
  });

  test('revoking the lock lease stops the command and exits 75', async () => {
    const name = lockName('cli-revoke');
    const run = cli(['lock', name, '--', ...sleeper()]);
    const pid = await childPid(run);
    await client.revoke((await holder(name)).lease);
    const r = await run.done;
    assert.equal(r.code, 75, r.err);
    assert.match(r.err, /lock .* lost/);
    assert.ok(!running(pid));
  });

  test('deleting the lock key stops the command and exits 75', async () => {
    const name = lockName('cli-delkey');
    const run = cli(['lock', name, '--', ...sleeper()]);
    const pid = await childPid(run);
    await client.delete((await holder(name)).key);
    await gone(pid);
    const r = await run.done;
    assert.equal(r.code, 75, r.err);
  });

  test('a command that exits 0 on SIGTERM after leadership is lost still exits 75', async () => {
    const name = lockName('cli-elect-lost');
    // `exec sleep` would drop the trap: the shell waits for a background sleep instead.
    const graceful = "trap 'kill $!; exit 0' TERM; echo $$; sleep 30 & wait";
    const run = cli(['elect', name, 'n1', '--', 'sh', '-c', graceful]);
    const pid = await childPid(run);
    await client.delete((await holder(name)).key);
    const r = await run.done;
    assert.equal(r.code, 75, r.err);
    assert.match(r.err, /leadership .* lost/);
    assert.ok(!running(pid));
  });

  test('elect without a command exits 75 when its leadership is lost', async () => {
    const name = lockName('cli-elect-bare');
    const run = cli(['elect', name, 'n1']);
    await eventually(() => assert.match(run.errors(), /elected in /));
    await client.delete((await holder(name)).key);
    const r = await run.done;
    assert.equal(r.code, 75, r.err);
    assert.match(r.err, /leadership .* lost/);
  });

  test('a command that ignores SIGTERM is killed after --grace', async () => {
    const name = lockName('cli-grace');
    // SIGTERM ignored by the shell stays ignored in the sleep it becomes.
    const run = cli(['lock', name, '--grace', '0.5', '--', ...sleeper('trap "" TERM;')]);
    const pid = await childPid(run);
    await client.delete((await holder(name)).key);
    const r = await run.done;
    assert.equal(r.code, 75, r.err);
    assert.ok(!running(pid));
  });

  test('the command gets the key, fencing token and lease in its environment', async () => {
    const show =
      'echo "$ETCDKIT_LOCK_KEY $ETCDKIT_LEADER_KEY $ETCDKIT_FENCING_TOKEN $ETCDKIT_LEASE";';
    for (const args of [
      ['lock', lockName('cli-env-lock')],
      ['elect', lockName('cli-env-elect'), 'n1'],
    ]) {
      const run = cli([...args, '--', ...sleeper(show)]);
      const out = await run.output((o) => o.split('\n').length > 2);
      const kv = await holder(args[1]!);
      const [lockKey, leaderKey] = args[0] === 'lock' ? [kv.key, ''] : ['', kv.key];
      assert.equal(
        out.split('\n')[0],
        `${lockKey} ${leaderKey} ${kv.createRevision} ${kv.lease.toString(16)}`,
      );
      run.child.kill('SIGINT');
      assert.equal((await run.done).code, 130);
    }
  });

  test('Ctrl-C stops the command, releases the lock and exits 130', async () => {
    const name = lockName('cli-sigint');
    const run = cli(['lock', name, '--', ...sleeper()]);
    const pid = await childPid(run);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.err);
    assert.doesNotMatch(r.err, /lost/);
    assert.ok(!running(pid));
    assert.equal((await client.readdir(`${name}/`)).count, 0);
  });

  test('a missing command exits 127 and one that cannot run 126, without taking the lock', async () => {
    const name = lockName('cli-nocmd');
    const missing = await cli(['lock', name, '--', 'etcdkit-no-such-command']).done;
    assert.equal(missing.code, 127, missing.err);
    assert.match(missing.err, /etcdkit-no-such-command: command not found/);
    const file = join(scratch, 'not-executable');
    writeFileSync(file, 'echo hi\n');
    chmodSync(file, 0o644);
    const denied = await cli(['elect', name, 'n1', '--', file]).done;
    assert.equal(denied.code, 126, denied.err);
    assert.match(denied.err, /permission denied/i);
    assert.equal((await client.readdir(`${name}/`)).count, 0);
  });

  test('the command dies with etcdkit when etcdkit is killed with SIGKILL', async () => {
    const name = lockName('cli-pdeathsig');
    // A long TTL: the command must end long before the lease would.
    const run = cli(['lock', name, '--ttl', '60', '--', ...sleeper()]);
    const pid = await childPid(run);
    run.child.kill('SIGKILL');
    await gone(pid);
  });

  test('without setpriv on PATH a watchdog stops the command when etcdkit is killed', async () => {
    const name = lockName('cli-watchdog');
    const emptyPath = mkdtempSync(join(scratch, 'path-'));
    const node = [process.execPath, '-e', 'console.log(process.pid); setInterval(() => {}, 1000)'];
    const run = cli(['lock', name, '--ttl', '60', '--', ...node], { env: { PATH: emptyPath } });
    const pid = await childPid(run);
    run.child.kill('SIGKILL');
    await gone(pid);
  });
});

describe('at risk is told, not acted on', () => {
  test('an overdue keepalive is reported as suspended, then resumed, and the command runs on', async () => {
    await using proxy = await startProxy(etcd.endpoint);
    const name = lockName('cli-suspend');
    const run = runCli(proxy.url, ['lock', name, '--ttl', '3', '--', ...sleeper()]);
    const pid = await childPid(run);
    try {
      // Answers late by more than the overdue threshold (TTL 3 s: 1 s), well within the TTL.
      await proxy.delay(1_300, 'frames');
      await eventually(() => assert.match(run.errors(), /suspended/), { timeout: 10_000 });
      await proxy.pass();
      await eventually(() => assert.match(run.errors(), /resumed/), { timeout: 10_000 });
      assert.ok(running(pid), 'the command runs on');
      assert.doesNotMatch(run.errors(), /lost/);
    } finally {
      await proxy.pass();
      run.child.kill('SIGINT');
    }
    const result = await run.done;
    assert.equal(result.code, 130);
    await gone(pid);
  });
});
