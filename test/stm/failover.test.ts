// Transfers keep running while the raft leader of a three-member cluster is
// killed: money is conserved, every transfer that resolved true left its receipt,
// and none that failed for certain did.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, EtcdError } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { StmIndeterminateError } from '@etcdkit/stm';
import { assertConserved, openAccounts, receipts, seeded, transfer } from './bank.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

type Outcome = 'moved' | 'refused' | 'failed' | 'unknown';

test('killing the leader while transfers run conserves money and loses no receipt', async (t) => {
  const keyPrefix = uniquePrefix('stm-failover');
  const names = ['a', 'b', 'c', 'd'];
  const clients = [0, 1].map(
    () => new Etcd({ endpoints: cluster.endpoints, keyPrefix, timeout: 5_000 }),
  );
  const admin = new Etcd({ endpoints: cluster.endpoints, keyPrefix });
  const outcomes = new Map<number, Outcome>();
  const errors: string[] = [];
  const count = (outcome: Outcome) => [...outcomes.values()].filter((o) => o === outcome).length;
  let stopped = false;
  try {
    await openAccounts(admin, names, 50);
    const random = seeded(7);
    let next = 0;
    const worker = async (etcd: Etcd) => {
      while (!stopped) {
        const id = next++;
        const from = names[Math.floor(random() * names.length)]!;
        const to = names[(names.indexOf(from) + 1 + Math.floor(random() * 3)) % names.length]!;
        try {
          const moved = await transfer(etcd, id, from, to, 1 + Math.floor(random() * 20));
          outcomes.set(id, moved ? 'moved' : 'refused');
        } catch (err) {
          const unknown = err instanceof StmIndeterminateError;
          outcomes.set(id, unknown ? 'unknown' : 'failed');
          errors.push(err instanceof EtcdError ? `${err.name}: ${err.message}` : String(err));
          assert.ok(err instanceof EtcdError, `a transfer failed with ${String(err)}`);
          // The cluster is electing a leader: do not spin.
          await sleep(50);
        }
      }
    };
    const workers = clients.flatMap((etcd) => [worker(etcd), worker(etcd), worker(etcd)]);

    await eventually(() => assert.ok(count('moved') >= 20), { timeout: 60_000 });
    const leader = await cluster.leader();
    await leader.kill('SIGKILL');
    const movedAtKill = count('moved');
    await eventually(() => assert.ok(count('moved') >= movedAtKill + 30), { timeout: 90_000 });
    stopped = true;
    await Promise.all(workers);

    await assertConserved(admin, names, 200);
    const found = await receipts(admin);
    for (const [id, outcome] of outcomes) {
      if (outcome === 'moved')
        assert.ok(found.has(id), `transfer ${id} resolved but left no receipt`);
      if (outcome === 'refused' || outcome === 'failed') {
        assert.ok(!found.has(id), `transfer ${id} ${outcome} yet left a receipt`);
      }
    }
    t.diagnostic(
      `moved ${count('moved')}, refused ${count('refused')}, failed ${count('failed')}, ` +
        `unknown ${count('unknown')} (of which applied: ` +
        `${[...outcomes].filter(([id, o]) => o === 'unknown' && found.has(id)).length})`,
    );
    for (const e of new Set(errors)) t.diagnostic(e);
  } finally {
    stopped = true;
    await Promise.all([...clients, admin].map((c) => c.close()));
  }
});
