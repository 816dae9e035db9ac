/**
 * Exactly-once jobs: jobs wait in etcd; worker processes take them one at a
 * time, each under its own Mutex, and apply them to a ledger outside etcd
 * (a small HTTP server started here). Each job must reach the ledger once
 * and be marked done in etcd once, even when etcd loses its leader with
 * requests in flight: see job.ts for how. At the end the ledger and etcd
 * are compared job by job.
 *
 *   ETCD_ENDPOINTS=http://127.0.0.1:2379 node dist/main.js
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@etcdkit/client';
import { DONE, type DoneMark, doneKey, type JobEvent, jobKey } from './job.js';
import { Ledger } from './ledger.js';

const endpoints = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const workers = Number(process.env.WORKERS ?? 4);
const jobs = Number(process.env.JOBS ?? 48);
const prefix = process.env.EXAMPLE_PREFIX ?? `examples/jobs-${randomBytes(3).toString('hex')}/`;
const log = (line: string) => console.log(`[jobs] ${line}`);
const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));

const etcd = createClient({ endpoints: endpoints.split(','), keyPrefix: prefix });
const ledger = await Ledger.start(process.env.LEDGER_FILE);
const ids = Array.from({ length: jobs }, (_, i) => `job-${String(i + 1).padStart(3, '0')}`);
await Promise.all(ids.map((id, i) => etcd.set(jobKey(id), { amount: i + 1 })));
log(`${jobs} jobs waiting, ${workers} workers, ledger at ${ledger.url}`);

let retried = 0;
let failures = 0;
function describe(
  name: string,
  e: JobEvent | { event: 'error'; job?: string; error: string },
): string | undefined {
  switch (e.event) {
    case 'done':
      return `${name} did ${e.job} under token ${e.token}${e.attempts > 1 ? `, marked done on attempt ${e.attempts}${e.byEarlierAttempt ? ' (an earlier attempt had landed)' : ''}` : ''}`;
    case 'retrying':
      retried++;
      return `${name}: marking ${e.job} done came back ${e.indeterminate ? 'indeterminate' : 'refused'} (${e.error}); still holding its lock, sending it again`;
    case 'duplicate':
      return `${name}: the ledger has ${e.job} already (token ${e.applied}); marking it done`;
    case 'left':
      return `${name} left ${e.job}: ${e.reason}`;
    case 'error':
      failures++;
      return `${name}: ${e.job ?? 'listing jobs'} failed, it stays pending: ${e.error}`;
    case 'skipped':
      return undefined;
  }
}

const running = Array.from({ length: workers }, (_, i) => {
  const name = `worker-${i + 1}`;
  const child = spawn(process.execPath, [workerPath], {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: endpoints,
      WORKER_NAME: name,
      EXAMPLE_PREFIX: prefix,
      LEDGER_URL: ledger.url,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const text = describe(name, JSON.parse(line) as Parameters<typeof describe>[1]);
    if (text) log(text);
  });
  return new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
});
const codes = await Promise.all(running);

// The verdict, job by job: one ledger entry, one done mark written once, and the two agree.
const marks = new Map((await etcd.readdir(DONE)).kvs.map((kv) => [kv.key.slice(DONE.length), kv]));
const problems: string[] = [];
for (const id of ids) {
  const entry = ledger.entries.get(id);
  const kv = marks.get(id);
  if (!entry) problems.push(`${id} never reached the ledger`);
  if (!kv) problems.push(`${id} was never marked done (${doneKey(id)})`);
  else if (kv.version !== 1) problems.push(`${id} was marked done ${kv.version} times`);
  else if (entry && (kv.value as DoneMark).applied !== entry.token) {
    const { applied } = kv.value as DoneMark;
    problems.push(
      `${id}: the done mark says token ${applied} applied it, the ledger ${entry.token}`,
    );
  }
}
if (ledger.entries.size !== jobs) problems.push(`the ledger holds ${ledger.entries.size} entries`);
await etcd.rmdir('');
await etcd.close();
await ledger.close();

for (const p of problems) log(`PROBLEM ${p}`);
log(
  `${ledger.entries.size} of ${jobs} jobs applied at the ledger, ${marks.size} marked done; ` +
    `${retried} done marks sent again under the lock, ${ledger.duplicates} second applies refused ` +
    `by the ledger, ${ledger.stale} stale tokens refused, ${failures} failed attempts retried later`,
);
if (codes.some((c) => c !== 0) || problems.length > 0) {
  log('FAILED: a job was lost, applied twice or marked done twice');
  process.exit(1);
}
log('every job applied exactly once and marked done exactly once');
