import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, freePorts, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry } from '@etcdkit/registry';
import { cli as runCli } from './run-cli.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(etcd.endpoint, args, { env });

const run = (...args: string[]) => cli(args).done;

describe('etcdkit', () => {
  test('put, get, ls and del', async () => {
    const p = uniquePrefix('cli');
    assert.match((await run('put', `${p}a`, 'one')).out, /^OK \(revision \d+\)/);
    await run('put', `${p}b`, 'two');
    const got = await run('get', `${p}a`);
    assert.deepEqual([got.code, got.out], [0, 'one\n']);
    const json = JSON.parse((await run('get', `${p}a`, '--json')).out) as {
      value: string;
      version: number;
    };
    assert.deepEqual([json.value, json.version], ['one', 1]);
    assert.deepEqual((await run('ls', p, '--keys-only')).out.trim().split('\n'), [
      `${p}a`,
      `${p}b`,
    ]);
    assert.equal((await run('del', p, '--prefix')).out.trim(), '2');
    const missing = await run('get', `${p}a`);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /not found/);
  });

  test('put --ttl attaches a lease that lease ls and lease ttl show', async () => {
    const p = uniquePrefix('cli-ttl');
    await run('put', `${p}k`, 'v', '--ttl', '30');
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const lease = (await client.get(`${p}k`))!.lease;
    assert.ok((await run('lease', 'ls')).out.split('\n').includes(lease.toString(16)));
    const ttl = await run('lease', 'ttl', lease.toString(16), '--keys');
    assert.match(ttl.out, /ttl \d+ s of 30 s/);
    assert.match(ttl.out, new RegExp(`${p}k`));
  });

  test('watch prints changes as they happen, from a revision too', async () => {
    const p = uniquePrefix('cli-watch');
    await using client = new Etcd({ endpoints: etcd.endpoint, codec: 'string' });
    const first = await client.set(`${p}x`, '1');
    // From the revision of the first put, so what happened before the watch started counts too.
    const watcher = cli(['watch', p, '--prefix', '--from-rev', String(first.revision), '--json']);
    await client.set(`${p}y`, '2');
    await client.delete(`${p}x`);
    await watcher.output((out) => out.split('\n').length > 3);
    watcher.child.kill('SIGINT');
    const result = await watcher.done;
    assert.equal(result.code, 0);
    const events = result.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; key: string; value?: string });
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.key} ${e.value ?? ''}`),
      [`put ${p}x 1`, `put ${p}y 2`, `delete ${p}x `],
    );
  });

  test('lock runs the command under the lock and passes its exit code through', async () => {
    const name = uniquePrefix('cli-lock').slice(0, -1);
    const r = await run(
      'lock',
      name,
      '--',
      process.execPath,
      '-e',
      'console.log("inside"); process.exit(7)',
    );
    assert.equal(r.code, 7);
    assert.equal(r.out, 'inside\n');
    assert.match(r.err, /locked .* \(token \d+\)/);
    // Two at once: each command prints when it starts and ends; the intervals must not overlap.
    const script = 'console.log(Date.now()); setTimeout(() => console.log(Date.now()), 300)';
    const results = await Promise.all(
      [1, 2].map(() => cli(['lock', name, '--', process.execPath, '-e', script]).done),
    );
    const spans = results
      .map((res) => res.out.trim().split('\n').map(Number))
      .sort((a, b) => a[0]! - b[0]!);
    assert.equal(spans.length, 2);
    assert.ok(spans[0]![1]! <= spans[1]![0]!, `overlap: ${JSON.stringify(spans)}`);
    assert.deepEqual(
      results.map((res) => res.code),
      [0, 0],
    );
  });

  test('elect leads while the command runs; --listen prints the leader, then that there is none', async () => {
    const name = uniquePrefix('cli-elect').slice(0, -1);
    const leader = cli([
      'elect',
      name,
      'node-1',
      '--',
      process.execPath,
      '-e',
      'setTimeout(() => {}, 1500)',
    ]);
    const listener = cli(['elect', name, '--listen']);
    await eventually(async () => {
      await using client = new Etcd({ endpoints: etcd.endpoint });
      assert.equal((await client.readdir(`${name}/`)).count, 1);
    });
    const led = await leader.done;
    assert.equal(led.code, 0);
    assert.match(led.err, /elected in .* \(token \d+\)/);
    // The leader resigned when its command ended: nobody leads.
    await listener.output((o) => o.endsWith('(no leader)\n'));
    listener.child.kill('SIGINT');
    const heard = await listener.done;
    assert.match(heard.out, /node-1\n\(no leader\)\n$/);
  });

  test('services ls and watch show registered instances', async () => {
    const prefix = `${uniquePrefix('cli-services')}reg`;
    await using client = new Etcd({ endpoints: etcd.endpoint });
    await using registry = new Registry(client, { prefix });
    await registry.register('api', { id: 'api-1', address: '127.0.0.1', port: 8080 });
    const ls = await run('services', 'ls', '--registry-prefix', prefix);
    assert.equal(ls.out.trim(), 'api');
    const instances = await run('services', 'ls', 'api', '--registry-prefix', prefix);
    assert.match(instances.out, /^api-1\t127\.0\.0\.1:8080\tup/);
  });

  test('every error has a clear message and a non-zero exit code', async () => {
    const unknown = await run('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "frobnicate"/);
    const badFlag = await run('get', 'k', '--nope');
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.err, /usage: etcdkit get/);
    const missingArg = await run('put', 'k');
    assert.equal(missingArg.code, 2);
    const emptyKey = await run('get', '');
    assert.equal(emptyKey.code, 2);
    assert.match(emptyKey.err, /must not be empty/);
    const [port] = await freePorts(1);
    const unreachable = await cli(['get', 'k'], {
      ETCDKIT_ENDPOINTS: `http://127.0.0.1:${port}`,
      ETCDKIT_TIMEOUT: '1000',
    }).done;
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /ETCDKIT_UNAVAILABLE/);
    const help = await run('lock', '--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /usage: etcdkit lock NAME/);
  });
});
