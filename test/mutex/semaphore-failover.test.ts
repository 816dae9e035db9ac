// Semaphore permits while the etcd leader is killed: contenders of three
// clients take 1 to 3 of 5 permits on a three-member cluster. etcd itself
// judges: each holder, in a txn guarded by its lock, records its permits and
// reads every record and the queue, so it sums, at that revision, the permits
// of the holders whose key still exists (a record whose delete went
// unanswered in the fault may outlive its holder's release). The sum must
// never exceed the limit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, Op } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, Semaphore } from '@etcdkit/mutex';
import { expectQueue } from './helpers.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

const LIMIT = 5;

interface Outcome {
  /** Entries whose guarded record committed, with the permits read at that revision. */
  entries: Array<{ token: bigint; permits: number; sum: number; revision: bigint }>;
  /** Entries refused by the guard: the lock was lost before its record was written. */
  lost: number;
  problems: string[];
}

/**
 * Records the holder's permits under its lease, if it still holds, and sums
 * the records of holders whose queue key exists, at that revision.
 */
async function enter(
  client: Etcd,
  name: string,
  active: string,
  lock: Lock,
  permits: number,
  out: Outcome,
) {
  const r = await client
    .txn()
    .if(lock.guard())
    .success(
      Op.put(`${active}${lock.token}`, permits, { lease: lock.session.lease }),
      Op.readdir(active),
      Op.readdir(`${name}/`, { keysOnly: true }),
    )
    .commit();
  if (!r.succeeded) {
    out.lost++;
    return;
  }
  const [, records, queue] = r.results;
  const live = new Set(
    queue?.type === 'range' ? queue.kvs.map((kv) => `${active}${kv.createRevision}`) : [],
  );
  let sum = 0;
  for (const kv of records?.type === 'range' ? records.kvs : []) {
    if (live.has(kv.key)) sum += Number(kv.value);
  }
  out.entries.push({ token: lock.token, permits, sum, revision: r.revision });
}

/** Releases as a careful user does: a release without an answer is tried again. */
async function release(lock: Lock, out: Outcome): Promise<void> {
  for (let attempt = 1; attempt <= 50; attempt++) {
    try {
      await lock.release();
      return;
    } catch (err) {
      if (err instanceof Error && err.name === 'LockNotHeldError') return;
      if (attempt === 50) out.problems.push(`release: ${String(err)}`);
      await sleep(100);
    }
  }
}

test('killing the leader never lets more permits be held than the limit', async (t) => {
  const name = `${uniquePrefix('sem-failover')}pool`;
  const active = `${name}-active/`;
  const endpoints = cluster.endpoints;
  const clients = [0, 1, 2].map(
    (i) =>
      new Etcd({
        endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)],
        sessionTtl: 5,
        timeout: 3_000,
      }),
  );
  const stop = new AbortController();
  const out: Outcome = { entries: [], lost: 0, problems: [] };
  const contenders = Array.from({ length: 9 }, async (_, i) => {
    const client = clients[i % 3]!;
    const semaphore = new Semaphore(client, name, LIMIT);
    for (let round = 0; !stop.signal.aborted; round++) {
      const permits = 1 + ((i + round) % 3);
      let lock: Lock;
      try {
        lock = await semaphore.acquire({ permits, signal: stop.signal });
      } catch (err) {
        if (stop.signal.aborted) return;
        out.problems.push(`acquire: ${String(err)}`);
        await sleep(100);
        continue;
      }
      try {
        await enter(client, name, active, lock, permits, out);
        await sleep(5 + ((i * 7 + round) % 20));
        await client
          .txn()
          .if(lock.guard())
          .success(Op.delete(`${active}${lock.token}`))
          .commit();
      } catch (err) {
        out.problems.push(`section: ${String(err)}`);
      } finally {
        await release(lock, out);
      }
    }
  });
  const entered = async (count: number) =>
    eventually(() => assert.ok(out.entries.length >= count, `${out.entries.length} entries`), {
      timeout: 120_000,
      interval: 50,
    });
  try {
    await entered(40);
    const leader = await cluster.leader();
    const before = out.entries.length;
    await leader.kill('SIGKILL');
    await entered(before + 40);
    leader.start('existing');
    await leader.waitHealthy(30_000);
    await entered(out.entries.length + 20);
  } finally {
    stop.abort(new Error('the test is over'));
    await Promise.all(contenders);
  }
  const over = out.entries.filter((e) => e.sum > LIMIT);
  const most = Math.max(...out.entries.map((e) => e.sum));
  t.diagnostic(
    `${out.entries.length} entries, at most ${most} of ${LIMIT} permits recorded at once, ` +
      `${out.lost} refused by the guard, ${out.problems.length} problems`,
  );
  for (const p of new Set(out.problems)) t.diagnostic(p);
  assert.deepEqual(over, [], 'never more permits than the limit');
  const tokens = out.entries.map((e) => e.token);
  assert.equal(new Set(tokens).size, tokens.length, 'every holder has a token of its own');
  assert.ok(most >= 3, 'permits were really shared');
  await expectQueue(clients[0]!, name, [], 30_000);
  await Promise.all(clients.map((c) => c.close()));
});
