// A commit whose answer is lost is not run again, and an abort while it is on its
// way says the outcome is unknown; an abort while a read hangs ends the call.
// The client talks to etcd through the loopback fault proxy.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { Etcd, TimeoutError } from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  type FaultProxy,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { StmIndeterminateError, stm } from '@etcdkit/stm';
import { account, balances, openAccounts } from './bank.js';

let cluster: EtcdCluster;
let proxy: FaultProxy;
let etcd: Etcd;
let direct: Etcd;
before(async () => {
  cluster = await startEtcd();
  proxy = await startProxy(cluster.endpoint);
});
beforeEach(async () => {
  await proxy.pass();
  await etcd?.close();
  await direct?.close();
  const keyPrefix = uniquePrefix('stm-faults');
  etcd = new Etcd({ endpoints: proxy.url, keyPrefix, timeout: 5_000 });
  direct = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
  await openAccounts(direct, ['alice', 'bob'], 100);
  // The client's first call also detects the API prefix: get that done before any fault.
  await etcd.get(account('alice'));
});
after(async () => {
  await etcd?.close();
  await direct?.close();
  await proxy?.close();
  await cluster?.close();
});

async function expectBalances(alice: number, bob: number): Promise<void> {
  assert.deepEqual(Object.fromEntries(await balances(direct, ['alice', 'bob'])), { alice, bob });
}

/** Moves 10 from alice to bob; `beforeCommit` runs as the function's last step, once per run. */
function move(beforeCommit: () => Promise<void>, signal?: AbortSignal): Promise<void> {
  return stm(
    etcd,
    async (tx) => {
      const alice = Number(await tx.get(account('alice')));
      const bob = Number(await tx.get(account('bob')));
      tx.put(account('alice'), alice - 10);
      tx.put(account('bob'), bob + 10);
      await beforeCommit();
    },
    signal ? { signal } : {},
  );
}

test('a commit applied but unanswered rejects with StmIndeterminateError and is not run again', async () => {
  let runs = 0;
  await assert.rejects(
    move(async () => {
      runs++;
      // The next kv/txn is the commit: etcd applies it, its answer never arrives.
      await proxy.dropResponses({ match: '/v3/kv/txn', times: 1 });
    }),
    (err) =>
      err instanceof StmIndeterminateError &&
      err.indeterminate &&
      (err.cause as { indeterminate?: boolean }).indeterminate === true,
  );
  assert.equal(runs, 1);
  assert.equal(proxy.dropped, 1);
  // Applied exactly once: a second run would have moved another 10.
  await expectBalances(90, 110);
});

test('a commit that reached no answer before the deadline is not run again either', async () => {
  let runs = 0;
  await assert.rejects(
    move(async () => {
      runs++;
      // The commit leaves, and nothing comes back until the client's 5 s deadline.
      await proxy.blackhole();
    }),
    (err) => err instanceof StmIndeterminateError && err.cause instanceof TimeoutError,
  );
  assert.equal(runs, 1);
  await proxy.pass();
  await expectBalances(100, 100);
});

test('an abort while the commit is on its way rejects with StmIndeterminateError, cause the reason', async () => {
  const controller = new AbortController();
  const reason = new Error('shutting down');
  let sent = 0;
  const call = move(async () => {
    sent = proxy.requests('/v3/kv/txn');
    await proxy.blackhole();
  }, controller.signal);
  await eventually(() => assert.ok(sent > 0 && proxy.requests('/v3/kv/txn') > sent));
  controller.abort(reason);
  await assert.rejects(call, (err) => err instanceof StmIndeterminateError && err.cause === reason);
  await proxy.pass();
  // Blackholed before it reached etcd: nothing moved, which the caller could not have known.
  await expectBalances(100, 100);
});

test('an abort while a read hangs rejects with the reason, and nothing is committed', async () => {
  const controller = new AbortController();
  const reason = new Error('gave up');
  await proxy.blackhole();
  const seen = proxy.requests('/v3/kv/txn');
  const call = move(async () => undefined, controller.signal);
  await eventually(() => assert.ok(proxy.requests('/v3/kv/txn') > seen));
  controller.abort(reason);
  await assert.rejects(call, (err) => err === reason);
  await proxy.pass();
  await expectBalances(100, 100);
});
