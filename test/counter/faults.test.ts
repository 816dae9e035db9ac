// Counter writes whose outcome is unknown. An add whose answer is lost is not
// retried; and while the raft leader of a three-member cluster is killed, the
// final value is exactly the sum of the adds that resolved plus some of the ones
// that were indeterminate (each add carries its own bit, so which ones is known).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, EtcdError } from '@etcdkit/client';
import { Counter, CounterIndeterminateError } from '@etcdkit/counter';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';

describe('one member behind the fault proxy', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcd();
  });
  after(async () => {
    await cluster?.close();
  });

  /** A counter `n` reached through a fresh proxy, and the same counter reached directly. */
  async function behindProxy(label: string) {
    const proxy = await startProxy(cluster.endpoint);
    const keyPrefix = uniquePrefix(label);
    const etcd = new Etcd({ endpoints: proxy.url, keyPrefix });
    const direct = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
    return {
      proxy,
      counter: new Counter(etcd, 'n'),
      direct: new Counter(direct, 'n'),
      async [Symbol.asyncDispose]() {
        await Promise.all([etcd.close(), direct.close()]);
        await proxy.close();
      },
    };
  }

  test('an add applied but unanswered rejects with CounterIndeterminateError and counts once', async () => {
    await using setup = await behindProxy('counter-lost');
    const { proxy, counter } = setup;
    assert.equal(await counter.add(10), 10n);
    await proxy.dropResponses({ match: '/v3/kv/txn', times: 1 });
    await assert.rejects(
      counter.add(5),
      (err) => err instanceof CounterIndeterminateError && err.indeterminate,
    );
    assert.equal(proxy.dropped, 1);
    assert.equal(await setup.direct.get(), 15n);
  });

  test('an abort while an add waits for its read rejects with the reason, and nothing is written', async () => {
    await using setup = await behindProxy('counter-abort');
    const { proxy, counter } = setup;
    assert.equal(await counter.get(), 0n);
    await proxy.blackhole();
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const seen = proxy.requests('/v3/kv/range');
    const add = counter.add(1, { signal: controller.signal });
    await eventually(() => assert.ok(proxy.requests('/v3/kv/range') > seen));
    controller.abort(reason);
    await assert.rejects(add, (err) => err === reason);
    await proxy.pass();
    assert.equal(await setup.direct.get(), 0n);
  });
});

describe('three members, the leader killed', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcd({ members: 3 });
  });
  after(async () => {
    await cluster?.close();
  });

  test('every resolved add is counted, and nothing but resolved and indeterminate adds', async (t) => {
    const keyPrefix = uniquePrefix('counter-failover');
    const clients = [0, 1].map(
      () => new Etcd({ endpoints: cluster.endpoints, keyPrefix, timeout: 5_000 }),
    );
    const resolved: bigint[] = [];
    const unknown: bigint[] = [];
    const failed: bigint[] = [];
    const errors = new Set<string>();
    let next = 0n;
    let stopped = false;
    const worker = async (counter: Counter) => {
      while (!stopped) {
        const bit = 1n << next++;
        try {
          await counter.add(bit);
          resolved.push(bit);
        } catch (err) {
          assert.ok(err instanceof EtcdError, `an add failed with ${String(err)}`);
          (err instanceof CounterIndeterminateError ? unknown : failed).push(bit);
          errors.add(`${err.name}: ${err.message}`);
          await sleep(50);
        }
      }
    };
    try {
      const workers = clients.flatMap((c) => {
        const counter = new Counter(c, 'bits');
        return [worker(counter), worker(counter), worker(counter)];
      });
      await eventually(() => assert.ok(resolved.length >= 20), { timeout: 60_000 });
      await (await cluster.leader()).kill('SIGKILL');
      const atKill = resolved.length;
      await eventually(() => assert.ok(resolved.length >= atKill + 30), { timeout: 90_000 });
      stopped = true;
      await Promise.all(workers);

      const value = await new Counter(clients[0]!, 'bits').get();
      const sum = (bits: bigint[]) => bits.reduce((a, b) => a | b, 0n);
      // Each add is one bit: the value says exactly which adds were applied.
      assert.equal(value & sum(resolved), sum(resolved), 'a resolved add is missing');
      assert.equal(value & sum(failed), 0n, 'an add that failed for certain was applied');
      assert.equal(value & ~(sum(resolved) | sum(unknown)), 0n, 'an add was applied twice');
      const applied = unknown.filter((bit) => (value & bit) !== 0n).length;
      t.diagnostic(
        `resolved ${resolved.length}, failed ${failed.length}, ` +
          `indeterminate ${unknown.length} (applied ${applied})`,
      );
      for (const e of errors) t.diagnostic(e);
    } finally {
      stopped = true;
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
