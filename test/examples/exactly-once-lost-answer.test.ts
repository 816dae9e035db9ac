// The exactly-once pattern of the exactly-once-jobs example, with the "done" txn's outcome made
// unknown on purpose by a fault proxy, right after the job reached the ledger: once with the
// txn applied and its answer lost, once with the txn lost before it reached etcd. The pattern
// keeps the lock and sends the txn again; the job is applied and marked done once. A naive
// worker that releases on the same fault and lets the job be picked again asks the ledger to
// apply it twice: only the ledger's idempotency key stops the second apply.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, EtcdError, Op } from '@etcdkit/client';
import {
  doJob,
  doneKey,
  type JobContext,
  type JobEvent,
  lockName,
} from '@etcdkit/example-exactly-once-jobs/job';
import { Ledger } from '@etcdkit/example-exactly-once-jobs/ledger';
import {
  type EtcdCluster,
  type FaultProxy,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { Mutex } from '@etcdkit/mutex';

let cluster: EtcdCluster;
let proxy: FaultProxy;
before(async () => {
  cluster = await startEtcd();
  proxy = await startProxy(cluster.endpoint);
});
after(async () => {
  await proxy?.close();
  await cluster?.close();
});

/**
 * A client through the proxy, with a short deadline so a swallowed request ends soon. The
 * transport is the run's (ETCDKIT_TRANSPORT) unless given.
 */
const client = (prefix: string, transport?: 'gateway') =>
  new Etcd({
    endpoints: [proxy.url],
    keyPrefix: prefix,
    timeout: 1_000,
    apiPrefix: '/v3',
    transport,
  });

/**
 * Runs doJob once with `fault` armed right after the ledger applied the job,
 * so it hits the next etcd call: the done txn. Returns what the job reported.
 */
async function runWithFault(
  label: string,
  fault: () => Promise<void>,
  onRetry: () => Promise<void> = async () => {},
  transport?: 'gateway',
) {
  const prefix = uniquePrefix(label);
  await using etcd = client(prefix, transport);
  const ledger = await Ledger.start();
  const events: JobEvent[] = [];
  const ctx: JobContext = {
    etcd,
    worker: 'w1',
    workMs: 0,
    async apply(job, token) {
      const r = ledger.apply(job, token, 'w1');
      await fault();
      return r;
    },
    report(event) {
      events.push(event);
      if (event.event === 'retrying') void onRetry();
    },
  };
  try {
    await doJob(ctx, 'job-1');
    await doJob(ctx, 'job-1'); // picked again: finds it done under the lock
    const mark = await etcd.get(doneKey('job-1'));
    return { events, ledger, mark };
  } finally {
    await ledger.close();
    await proxy.pass();
  }
}

test('the done txn applied, its answer lost: sent again under the lock, found done by the earlier attempt', async () => {
  // The proxy finds the txn's answer by its HTTP/1.1 request line, which only the gateway
  // sends: gRPC carries every call on one HTTP/2 connection, its paths in compressed headers.
  const { events, ledger, mark } = await runWithFault(
    'eo-answer-lost',
    () => proxy.dropResponses({ match: '/v3/kv/txn', times: 1 }),
    undefined,
    'gateway',
  );
  assert.equal(proxy.dropped > 0, true, 'an answer was dropped');
  const retries = events.filter((e) => e.event === 'retrying');
  assert.equal(retries.length, 1, JSON.stringify(events));
  assert.equal(retries[0]?.event === 'retrying' && retries[0].indeterminate, true);
  const done = events.find((e) => e.event === 'done');
  assert.deepEqual(done && { attempts: done.attempts, byEarlierAttempt: done.byEarlierAttempt }, {
    attempts: 2,
    byEarlierAttempt: true,
  });
  assert.equal(events.at(-1)?.event, 'skipped');
  assert.equal(ledger.entries.size, 1);
  assert.equal(ledger.duplicates, 0, 'the ledger was asked once');
  assert.equal(mark?.version, 1, 'marked done once');
});

test('the done txn lost before etcd saw it: sent again under the lock until it lands', async () => {
  const { events, ledger, mark } = await runWithFault(
    'eo-request-lost',
    () => proxy.blackhole(),
    () => proxy.pass(),
  );
  const retries = events.filter((e) => e.event === 'retrying');
  assert.ok(retries.length >= 1, JSON.stringify(events));
  assert.ok(retries.every((e) => e.event === 'retrying' && e.indeterminate));
  const done = events.find((e) => e.event === 'done');
  assert.equal(done?.byEarlierAttempt, false, 'the attempt that landed was a later one');
  assert.equal(events.at(-1)?.event, 'skipped');
  assert.equal(ledger.entries.size, 1);
  assert.equal(ledger.duplicates, 0, 'the ledger was asked once');
  assert.equal(mark?.version, 1, 'marked done once');
});

test('the naive worker releases on the same fault: the job is redone, and only the ledger refuses the second apply', async () => {
  await using etcd = client(uniquePrefix('eo-naive'));
  const ledger = await Ledger.start();
  const mutex = new Mutex(etcd, lockName('job-1'));
  const outcomes: string[] = [];
  try {
    // Lock, skip if done, apply, mark done; on any error release and let the job be picked again.
    for (let run = 1; run <= 3; run++) {
      const lock = await mutex.lock();
      try {
        if (await etcd.get(doneKey('job-1'))) break;
        outcomes.push(ledger.apply('job-1', lock.token, `run ${run}`).result);
        if (run === 1) await proxy.blackhole();
        await etcd
          .txn()
          .if(lock.guard())
          .success(Op.put(doneKey('job-1'), { token: String(lock.token) }))
          .commit();
        break;
      } catch (err) {
        assert.ok(err instanceof EtcdError && err.indeterminate, String(err));
        outcomes.push('indeterminate');
        await proxy.pass();
      } finally {
        await lock.release().catch(() => undefined);
      }
    }
  } finally {
    await ledger.close();
    await proxy.pass();
  }
  // A resource without the idempotency key would have applied job-1 twice.
  assert.deepEqual(outcomes, ['applied', 'indeterminate', 'duplicate']);
  assert.equal(ledger.entries.size, 1);
  assert.equal(ledger.duplicates, 1);
});
