// Transfers between accounts from several clients at once: conflicts are retried,
// money is neither made nor lost, and exactly the transfers that resolved true
// left a receipt.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import type { Isolation } from '@etcdkit/stm';
import { assertConserved, balances, openAccounts, receipts, seeded, transfer } from './bank.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd();
});
after(async () => {
  await cluster?.close();
});

async function clients(count: number): Promise<Etcd[]> {
  const keyPrefix = uniquePrefix('stm-bank');
  return Array.from({ length: count }, () => new Etcd({ endpoints: cluster.endpoint, keyPrefix }));
}

test('two transfers in opposite directions on the same keys, many times over', async () => {
  const [a, b] = await clients(2);
  try {
    await openAccounts(a!, ['alice', 'bob'], 200);
    let id = 0;
    for (let round = 0; round < 25; round++) {
      const moved = await Promise.all([
        transfer(a!, id++, 'alice', 'bob', 7),
        transfer(b!, id++, 'bob', 'alice', 3),
      ]);
      assert.deepEqual(moved, [true, true]);
    }
    const found = await balances(a!, ['alice', 'bob']);
    assert.deepEqual(Object.fromEntries(found), { alice: 100, bob: 300 });
    assert.equal((await receipts(a!)).size, 50);
  } finally {
    await Promise.all([a!.close(), b!.close()]);
  }
});

for (const isolation of ['serializable', 'repeatable-read'] as Isolation[]) {
  test(`${isolation}: 150 concurrent transfers among 5 accounts from 3 clients`, async () => {
    const pool = await clients(3);
    const names = ['a', 'b', 'c', 'd', 'e'];
    try {
      await openAccounts(pool[0]!, names, 100);
      const random = seeded(isolation.length);
      const pick = () => names[Math.floor(random() * names.length)]!;
      const outcomes = await Promise.all(
        Array.from({ length: 150 }, (_, id) => {
          const from = pick();
          let to = pick();
          while (to === from) to = pick();
          const amount = 1 + Math.floor(random() * 40);
          return transfer(pool[id % pool.length]!, id, from, to, amount, { isolation });
        }),
      );
      await assertConserved(pool[0]!, names, 500);
      const moved = new Set(outcomes.flatMap((ok, id) => (ok ? [id] : [])));
      assert.deepEqual(await receipts(pool[0]!), moved);
      assert.ok(moved.size > 0);
    } finally {
      await Promise.all(pool.map((c) => c.close()));
    }
  });
}
