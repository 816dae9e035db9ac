// The STM's contract around the function: its errors, retries up to maxAttempts,
// aborts, prefetched keys, bad options, and a transaction used after its run.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, InvalidArgumentError } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { StmConflictError, type StmOptions, stm, type Transaction } from '@etcdkit/stm';

let cluster: EtcdCluster;
let etcd: Etcd;
let other: Etcd;
before(async () => {
  cluster = await startEtcd();
  const keyPrefix = uniquePrefix('stm');
  etcd = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
  other = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
});
after(async () => {
  await etcd?.close();
  await other?.close();
  await cluster?.close();
});

test('an error thrown by the function rejects the call, and nothing is written', async () => {
  const boom = new Error('no funds');
  await assert.rejects(
    stm(etcd, async (tx) => {
      tx.put('thrown', 1);
      throw boom;
    }),
    (err) => err === boom,
  );
  assert.equal(await etcd.get('thrown'), undefined);
});

test('every run conflicting: StmConflictError after maxAttempts runs', async () => {
  await etcd.set('hot', 0);
  let runs = 0;
  await assert.rejects(
    stm(
      etcd,
      async (tx) => {
        runs++;
        const n = Number(await tx.get('hot'));
        await other.set('hot', n + 1000);
        tx.put('hot', n + 1);
      },
      { maxAttempts: 3 },
    ),
    (err) => err instanceof StmConflictError && err.attempts === 3 && !err.indeterminate,
  );
  assert.equal(runs, 3);
  assert.equal((await etcd.get('hot'))?.value, 3000);
});

test('a conflict is retried with fresh values until the commit holds', async () => {
  await etcd.set('retried', 0);
  const seen: number[] = [];
  const result = await stm(etcd, async (tx) => {
    const n = Number(await tx.get('retried'));
    seen.push(n);
    if (seen.length < 4) await other.set('retried', n + 10);
    tx.put('retried', n + 1);
    return n + 1;
  });
  assert.deepEqual(seen, [0, 10, 20, 30]);
  assert.equal(result, 31);
  assert.equal((await etcd.get('retried'))?.value, 31);
});

test('prefetched keys are read before the function and guard the commit', async () => {
  await etcd.set('pre/a', 'a1');
  await etcd.set('pre/b', 'b1');
  let runs = 0;
  const seen = await stm(
    etcd,
    async (tx) => {
      runs++;
      if (runs === 1) await other.set('pre/b', 'b2');
      tx.put('pre/c', 'c');
      return tx.get('pre/a');
    },
    { prefetch: ['pre/a', 'pre/b'] },
  );
  // pre/b was never read by the function, yet its change made run 1 conflict.
  assert.equal(runs, 2);
  assert.equal(seen, 'a1');
});

test('an abort before the commit rejects with the reason and writes nothing', async () => {
  const before = new AbortController();
  const reason = new Error('stop');
  before.abort(reason);
  let ran = false;
  await assert.rejects(
    stm(
      etcd,
      (tx) => {
        ran = true;
        tx.put('aborted', 1);
      },
      { signal: before.signal },
    ),
    (err) => err === reason,
  );
  assert.equal(ran, false);

  const during = new AbortController();
  await assert.rejects(
    stm(
      etcd,
      async (tx) => {
        tx.put('aborted', 2);
        during.abort(reason);
        // Even a function that swallows the abort does not commit.
        await tx.get('other').catch(() => undefined);
      },
      { signal: during.signal },
    ),
    (err) => err === reason,
  );

  const waiting = new AbortController();
  let release: () => void = () => undefined;
  const stuck = stm(
    etcd,
    async (tx) => {
      tx.put('aborted', 3);
      await new Promise<void>((resolve) => {
        release = resolve;
        waiting.abort(reason);
      });
    },
    { signal: waiting.signal },
  );
  // The call rejects at the abort even though the function has not returned.
  await assert.rejects(stuck, (err) => err === reason);
  release();
  assert.equal(await etcd.get('aborted'), undefined);
});

test('a transaction used after its run has ended throws', async () => {
  let leaked: Transaction<unknown> | undefined;
  await stm(etcd, (tx) => {
    leaked = tx;
  });
  assert.throws(() => leaked?.put('late', 1), InvalidArgumentError);
  await assert.rejects(leaked!.get('late'), InvalidArgumentError);
  assert.equal(await etcd.get('late'), undefined);
});

test('bad arguments reject with InvalidArgumentError before anything runs', async () => {
  const bad: unknown[] = [
    { isolation: 'snapshot' },
    { maxAttempts: 0 },
    { maxAttempts: 1.5 },
    { maxAttempts: '3' },
    { maxAttempts: Number.NaN },
    { prefetch: 'a' },
    { prefetch: [''] },
    { signal: 'soon' },
    { retries: 3 },
    null,
  ];
  for (const options of bad) {
    let ran = false;
    const call = stm(
      etcd,
      () => {
        ran = true;
      },
      options as StmOptions,
    );
    await assert.rejects(call, InvalidArgumentError, JSON.stringify(options));
    assert.equal(ran, false);
  }
  await assert.rejects(
    stm({} as Etcd, () => 1),
    InvalidArgumentError,
  );
  await assert.rejects(stm(etcd, 'fn' as never), InvalidArgumentError);
  await assert.rejects(
    stm(etcd, async (tx) => tx.get('')),
    InvalidArgumentError,
  );
  await assert.rejects(
    stm(etcd, (tx) => tx.put('k', 1, { lease: 5 } as never)),
    InvalidArgumentError,
  );
  assert.ok(await stm(etcd, () => true, { maxAttempts: Number.POSITIVE_INFINITY }));
});
