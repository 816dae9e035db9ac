// The exactly-once-jobs example run as a user would, while the etcd leader is SIGKILLed with
// jobs in flight and then restarted. Judged independently of the example's own verdict: the
// ledger's file must hold each job once, and a watch on the done marks must see each one put
// once. Requests go to the leader first, so the kill catches some of them in flight.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { collectOutput } from './output.js';

const require = createRequire(import.meta.url);
const JOBS = 60;
const KILL_AFTER = 10;

let cluster: EtcdCluster;
let dir: string;
before(async () => {
  cluster = await startEtcd({ members: 3 });
  dir = mkdtempSync(join(tmpdir(), 'etcdkit-jobs-'));
});
after(async () => {
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('exactly-once jobs: a leader kill neither loses a job nor applies or marks one twice', async (t) => {
  const leader = await eventually(() => cluster.leader(), { timeout: 15_000 });
  const endpoints = [leader.clientUrl, ...cluster.endpoints.filter((e) => e !== leader.clientUrl)];
  const prefix = uniquePrefix('exactly-once-jobs');
  const ledgerFile = join(dir, 'ledger.jsonl');

  // Every put and delete of a done mark, from before the example starts.
  await using checker = new Etcd({ endpoints: cluster.endpoints, keyPrefix: prefix });
  const watcher = await checker.watchdir('done/');
  const puts = new Map<string, number>();
  let deletes = 0;
  const watching = (async () => {
    for await (const batch of watcher) {
      for (const e of batch.events) {
        if (e.type === 'put') puts.set(e.kv.key, (puts.get(e.kv.key) ?? 0) + 1);
        else deletes++;
      }
    }
  })();

  const main = join(
    dirname(require.resolve('@etcdkit/example-exactly-once-jobs/package.json')),
    'dist',
    'main.js',
  );
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: endpoints.join(','),
      EXAMPLE_PREFIX: prefix,
      LEDGER_FILE: ledgerFile,
      JOBS: String(JOBS),
      WORKERS: '4',
      WORK_MS: '5',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collected = collectOutput(child);
  const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  const did = () => collected.text().match(/ did job-/g)?.length ?? 0;

  await eventually(() => assert.ok(did() >= KILL_AFTER, `${did()} jobs done`), {
    timeout: 60_000,
  });
  const doneAtKill = did();
  await leader.kill('SIGKILL');
  const next = await eventually(() => cluster.leader(), { timeout: 30_000 });
  assert.notEqual(next, leader);
  leader.start('existing');
  await leader.waitHealthy(30_000);
  const restartedAt = did();
  const code = await exited;
  const output = collected.text();
  t.diagnostic(`restarted at ${restartedAt}`);

  const lines = output.trim().split('\n');
  for (const line of lines.filter((l) =>
    /worker-\d.*(again|left|failed|already)|PROBLEM/.test(l),
  )) {
    t.diagnostic(line);
  }
  t.diagnostic(`${doneAtKill} jobs done at the kill; ${lines.at(-2) ?? ''}`);
  assert.equal(code, 0, output);
  assert.match(output, /every job applied exactly once and marked done exactly once/);
  assert.ok(doneAtKill < JOBS, 'jobs were still running when the leader was killed');

  // The ledger's own record: every job, once.
  const entries = readFileSync(ledgerFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { job: string }).job);
  assert.equal(entries.length, JOBS, 'ledger entries');
  assert.equal(new Set(entries).size, JOBS, 'distinct jobs in the ledger');

  // etcd's history: each done mark put once (the example removes its keys at the end).
  await eventually(() => assert.equal(deletes, JOBS, 'the clean-up seen by the watch'), {
    timeout: 20_000,
  });
  await watcher.cancel();
  await watching;
  assert.equal(puts.size, JOBS, 'done marks');
  for (const [key, n] of puts) assert.equal(n, 1, `${key} put ${n} times`);
});
