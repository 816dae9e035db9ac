// etcdkit in pipelines and scripts: values from stdin or a file, `--json` on
// every command, and a reader that stops early.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry } from '@etcdkit/registry';
import { bin, type CliOptions, cli as runCli } from './run-cli.js';

let etcd: EtcdCluster;
let client: Etcd<string>;
const scratch = mkdtempSync(join(tmpdir(), 'etcdkit-cli-'));
before(async () => {
  etcd = await startEtcd();
  client = new Etcd({ endpoints: etcd.endpoint, codec: 'string' });
});
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await client.close();
  await etcd.close();
});

const run = (args: string[], options?: CliOptions) => runCli(etcd.endpoint, args, options).done;
const lines = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('etcdkit in scripts', () => {
  test('put reads the value from stdin with "-" and from a file with --file', async () => {
    const p = uniquePrefix('cli-put');
    const piped = await run(['put', `${p}stdin`, '-'], { input: 'line one\nline two\n' });
    assert.equal(piped.code, 0, piped.err);
    assert.equal((await client.get(`${p}stdin`))?.value, 'line one\nline two\n');
    const file = join(scratch, 'value.txt');
    writeFileSync(file, 'from a file');
    const filed = await run(['put', `${p}file`, '--file', file]);
    assert.equal(filed.code, 0, filed.err);
    assert.equal((await client.get(`${p}file`))?.value, 'from a file');
    // Without a value nothing is read: a forgotten VALUE in cron must not store "".
    const missing = await run(['put', `${p}none`], { input: 'not read' });
    assert.equal(missing.code, 2);
    assert.equal(await client.get(`${p}none`), undefined);
  });

  test('--json on put, del, lease and services prints one JSON object a line', async () => {
    const p = uniquePrefix('cli-json');
    const put = lines((await run(['put', `${p}k`, 'v', '--ttl', '30', '--json'])).out);
    const kv = (await client.get(`${p}k`))!;
    assert.deepEqual(put, [{ key: `${p}k`, revision: String(kv.modRevision) }]);
    const lease = kv.lease.toString(16);
    assert.ok(lines((await run(['lease', 'ls', '--json'])).out).some((l) => l.lease === lease));
    const ttl = lines((await run(['lease', 'ttl', lease, '--keys', '--json'])).out);
    assert.equal(ttl.length, 1);
    assert.deepEqual([ttl[0]!.lease, ttl[0]!.grantedTtl, ttl[0]!.keys], [lease, 30, [`${p}k`]]);
    assert.deepEqual(lines((await run(['del', `${p}k`, '--json'])).out), [{ deleted: 1 }]);
    const prefix = `${p}reg`;
    await using registry = new Registry(client, { prefix });
    await registry.register('api', { id: 'api-1', address: '127.0.0.1', port: 8080 });
    const names = await run(['services', 'ls', '--json', '--registry-prefix', prefix]);
    assert.deepEqual(lines(names.out), [{ service: 'api' }]);
  });

  test('--json on ls, services ls SERVICE and services watch prints one JSON object a line', async () => {
    const p = uniquePrefix('cli-json-ls');
    await client.set(`${p}a`, 'one');
    const { id: lease } = await client.grant(30);
    await client.set(`${p}b`, 'two', { lease });
    const listed = await run(['ls', p, '--json']);
    assert.equal(listed.code, 0, listed.err);
    const [a, b] = [(await client.get(`${p}a`))!, (await client.get(`${p}b`))!];
    assert.deepEqual(lines(listed.out), [
      {
        key: a.key,
        value: 'one',
        createRevision: String(a.createRevision),
        modRevision: String(a.modRevision),
        version: 1,
      },
      {
        key: b.key,
        value: 'two',
        createRevision: String(b.createRevision),
        modRevision: String(b.modRevision),
        version: 1,
        lease: lease.toString(16),
      },
    ]);
    await client.revoke(lease);

    const prefix = `${p}reg`;
    await using registry = new Registry(client, { prefix });
    const first = await registry.register('api', { id: 'api-1', address: '127.0.0.1', port: 8080 });
    const instances = lines(
      (await run(['services', 'ls', 'api', '--json', '--registry-prefix', prefix])).out,
    );
    assert.equal(instances.length, 1);
    assert.deepEqual(
      [instances[0]!.id, instances[0]!.host, instances[0]!.status, instances[0]!.lease],
      ['api-1', '127.0.0.1:8080', 'up', first.lease!.toString(16)],
    );
    const watcher = runCli(etcd.endpoint, [
      'services',
      'watch',
      'api',
      '--json',
      '--registry-prefix',
      prefix,
    ]);
    await watcher.output((o) => o.includes('\n'));
    await registry.register('api', { id: 'api-2', address: '127.0.0.1', port: 8081 });
    const out = await watcher.output((o) => o.split('\n').length > 2);
    watcher.child.kill('SIGINT');
    assert.equal((await watcher.done).code, 0);
    const changes = lines(out);
    assert.deepEqual(
      changes.map((c) => [c.type, c.id, c.host]),
      [
        ['added', 'api-1', '127.0.0.1:8080'],
        ['added', 'api-2', '127.0.0.1:8081'],
      ],
    );
    assert.match(String(changes[1]!.modRevision), /^\d+$/);
  });

  test('--json on lock and elect: status lines on stderr; --listen lines carry the token, or nulls for no leader', async () => {
    const name = uniquePrefix('cli-json-elect').slice(0, -1);
    const locked = await run(['lock', `${name}-lock`, '--json', '--', 'sh', '-c', 'exit 3']);
    assert.equal(locked.code, 3);
    const [status] = lines(locked.err);
    assert.equal(status!.event, 'locked');
    assert.match(String(status!.token), /^\d+$/);
    const elected = await run(['elect', name, 'n1', '--json', '--', 'sh', '-c', 'exit 0']);
    assert.equal(lines(elected.err)[0]!.event, 'elected');
    const listener = runCli(etcd.endpoint, ['elect', name, '--listen', '--json']);
    const none = { key: null, value: null, token: null, lease: null, modRevision: null };
    // n1 has resigned and nobody else campaigns: the first line says so.
    const first = await listener.output((o) => o.includes('\n'));
    assert.deepEqual(lines(first), [none]);
    const leader = runCli(etcd.endpoint, ['elect', name, 'n2', '--', 'sleep', '30']);
    const out = await listener.output((o) => o.split('\n').length > 2);
    const kv = (await client.readdir(`${name}/`)).kvs[0]!;
    assert.deepEqual(lines(out)[1], {
      key: kv.key,
      value: 'n2',
      token: String(kv.createRevision),
      lease: kv.lease.toString(16),
      modRevision: String(kv.modRevision),
    });
    // Interrupted, the leader resigns: nobody leads again.
    leader.child.kill('SIGINT');
    assert.equal((await leader.done).code, 130);
    const last = await listener.output((o) => o.split('\n').length > 3);
    assert.deepEqual(lines(last).slice(2), [none]);
    listener.child.kill('SIGINT');
    assert.equal((await listener.done).code, 0);
  });

  test('through a pipe, ls prints everything, and ends quietly with exit 0 under head -1', async () => {
    const p = uniquePrefix('cli-pipe');
    // Far more than a pipe buffers, so etcdkit still has output queued when it is done reading.
    const value = 'x'.repeat(2_000);
    const keys = Array.from({ length: 300 }, (_, i) => `${p}${String(i).padStart(3, '0')}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => client.set(k, value)));
    }
    const expected = keys.reduce((n, k) => n + `${k}\n${value}\n`.length, 0);
    const counted = await pipeline(`ls "${p}" | wc -c`);
    assert.deepEqual(counted, { code: 0, out: `${expected}\n`, err: '' });
    assert.deepEqual(await pipeline(`ls "${p}" | head -1 >/dev/null`), {
      code: 0,
      out: '',
      err: '',
    });
  });
});

/** Runs `etcdkit WORDS` in a bash pipeline; with pipefail, etcdkit's own failure shows in the code. */
async function pipeline(words: string) {
  const shell = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${bin}" ${words}`], {
    env: { ...process.env, ETCDKIT_ENDPOINTS: etcd.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  shell.stdout.on('data', (c) => {
    out += c;
  });
  shell.stderr.on('data', (c) => {
    err += c;
  });
  const code = await new Promise((resolve) => shell.on('close', resolve));
  return { code, out: out.trimStart(), err };
}
