// Runs each example as a user would, against a 3-member cluster, and checks
// its verdict line and exit code.
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
after(() => cluster.close());

function runExample(pkg: string): Promise<{ code: number; output: string }> {
  const main = join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ETCD_ENDPOINTS: cluster.endpoints.join(',') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code: code ?? 1, output: output.text() })),
  );
}

test('locks in workers: no update lost, and the frozen worker is fenced', async (t) => {
  const { code, output } = await runExample('@etcdkit/example-locks-in-workers');
  t.diagnostic(output.trim().split('\n').slice(-2).join(' | '));
  assert.equal(code, 0, output);
  assert.match(output, /counter = 30, expected 30/);
  assert.match(output, /fenced write refused/);
});

test('service discovery: the killed instance leaves the set and every request reaches a live one', async (t) => {
  const { code, output } = await runExample('@etcdkit/example-service-discovery');
  t.diagnostic(output.match(/greeter-b left the set \d+ ms after the kill/)?.[0] ?? '');
  assert.equal(code, 0, output);
  assert.match(output, /every request reached a live instance/);
});

test('leader election: another replica takes over after the leader is killed', async (t) => {
  const { code, output } = await runExample('@etcdkit/example-leader-election');
  t.diagnostic(
    output.match(/leads with token \d+ \(\d+ ms after the old leader died\)/)?.[0] ?? '',
  );
  assert.equal(code, 0, output);
  assert.match(output, /leaders seen by the observer, in order: replica-\w → replica-\w/);
  // SIGTERM ended the leader's run(): its work stopped, then it resigned.
  assert.match(output, /replica-\w stepped down \(shutting down on SIGTERM\)/);
});
