// The work-sharing example run as a user would, against a 3-member cluster.
// Besides its own verdict, the ownership it prints is checked here: before the
// kill three replicas, after it two, each time every shard owned exactly once,
// and each survivor keeping every shard it had.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { type EtcdCluster, startEtcd } from '@etcdkit/harness';
import { collectOutput } from './output.js';

const require = createRequire(import.meta.url);
let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(() => cluster?.close());

const SHARDS = Array.from({ length: 12 }, (_, i) => `shard-${i}`).sort();

/** The "replica-x: shard-1 shard-7 ..." lines, in order, as [replica, shards]. */
function ownership(output: string): Array<[string, string[]]> {
  return [...output.matchAll(/^\[work-sharing\] (replica-\w): ?(.*)$/gm)].map((m) => [
    m[1]!,
    m[2]!.split(' ').filter(Boolean),
  ]);
}

test('work sharing: the shards of the killed replica, and only those, move to the survivors', async (t) => {
  const main = join(
    dirname(require.resolve('@etcdkit/example-work-sharing/package.json')),
    'dist',
    'main.js',
  );
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ETCD_ENDPOINTS: cluster.endpoints.join(',') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  const text = output.text();
  t.diagnostic(text.match(/the survivors took over \d+ ms after the kill/)?.[0] ?? '');
  assert.equal(code, 0, text);
  assert.match(text, /only the dead replica's shards moved/);

  const lines = ownership(text);
  assert.equal(lines.length, 5, text);
  const before = new Map(lines.slice(0, 3));
  const afterKill = new Map(lines.slice(3));
  assert.deepEqual([...before.keys()], ['replica-a', 'replica-b', 'replica-c']);
  assert.deepEqual([...afterKill.keys()], ['replica-a', 'replica-c']);
  assert.deepEqual([...before.values()].flat().sort(), SHARDS);
  assert.deepEqual([...afterKill.values()].flat().sort(), SHARDS);
  for (const [replica, shards] of afterKill) {
    for (const shard of before.get(replica)!)
      assert.ok(shards.includes(shard), `${replica} lost ${shard}`);
  }
});
