/**
 * One worker process: until no job is pending, picks a pending job at random
 * and does it (job.ts). A job that fails for a passing reason (etcd is
 * electing a new leader) is simply picked again later: its state in etcd
 * and the ledger's idempotency key make that safe. Reports each step as a
 * JSON line.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@etcdkit/client';
import { DONE, doJob, JOBS, type JobEvent } from './job.js';
import { applyAt } from './ledger.js';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const worker = process.env.WORKER_NAME ?? `worker-${process.pid}`;
const prefix = process.env.EXAMPLE_PREFIX ?? 'examples/jobs/';
const ledger = process.env.LEDGER_URL ?? 'http://127.0.0.1:8080';
const workMs = Number(process.env.WORK_MS ?? 20);

const report = (event: JobEvent | { event: string; [field: string]: unknown }) =>
  process.stdout.write(`${JSON.stringify({ worker, ...event })}\n`);

const etcd = createClient({ endpoints, keyPrefix: prefix });
const apply = (job: string, token: bigint) => applyAt(ledger, job, token, worker);
const ctx = { etcd, worker, apply, workMs, report };

/** IDs of the jobs that have no done mark yet. */
async function pending(): Promise<string[]> {
  const [jobs, done] = await Promise.all([
    etcd.readdir(JOBS, { keysOnly: true }),
    etcd.readdir(DONE, { keysOnly: true }),
  ]);
  const finished = new Set(done.kvs.map((kv) => kv.key.slice(DONE.length)));
  return jobs.kvs.map((kv) => kv.key.slice(JOBS.length)).filter((id) => !finished.has(id));
}

for (;;) {
  let id: string | undefined;
  try {
    const ids = await pending();
    if (ids.length === 0) break;
    id = ids[Math.floor(Math.random() * ids.length)]!;
    await doJob(ctx, id);
  } catch (err) {
    report({
      event: 'error',
      job: id,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
    await sleep(200);
  }
}
report({ event: 'finished' });
await etcd.close();
