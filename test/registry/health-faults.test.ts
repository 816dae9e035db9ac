// Faults: health keeps flipping while an etcd member is killed; every consumer
// converges to the health stored in etcd, which is what the checks decided.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Registration, Registry, type ServiceSet } from '@etcdkit/registry';
import { ids } from './helpers.js';
import { SwitchableCheck } from './switchable-check.js';

const at = (id: string) => ({ id, address: '127.0.0.1', port: 9000 });

/** Every set holds what etcd holds, health included, and that is what each registration decided. */
async function converged(truthFrom: Registry, sets: ServiceSet[], regs: Map<string, Registration>) {
  const truth = await truthFrom.instances('api');
  const expected = truth.map((i) => `${i.id}:${i.healthy}@${i.modRevision}`);
  for (const set of sets) {
    assert.deepEqual(
      set.instances().map((i) => `${i.id}:${i.healthy}@${i.modRevision}`),
      expected,
    );
  }
  for (const i of truth) assert.equal(i.healthy, regs.get(i.id)?.health?.healthy, i.id);
  return truth;
}

test('consumers converge on health that flipped while the etcd leader was down', async (t) => {
  await using cluster = await startEtcd({ members: 3 });
  const prefix = uniquePrefix('registry-health-leader');
  const endpoints = cluster.endpoints;
  await using producer = new Etcd({ endpoints });
  const registry = new Registry(producer, { prefix, ttl: 10 });
  const checks = new Map<string, SwitchableCheck>();
  const regs = new Map<string, Registration>();
  for (const id of ['a', 'b', 'c']) {
    const check = new SwitchableCheck();
    checks.set(id, check);
    const health = { check: check.check, interval: 20, failureThreshold: 1 };
    regs.set(id, await registry.register('api', at(id), { health }));
  }
  const consumers = endpoints.map(
    (_, i) => new Etcd({ endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)] }),
  );
  const sets = await Promise.all(
    consumers.map((client) => new Registry(client, { prefix }).discover('api')),
  );
  try {
    await eventually(() => converged(registry, sets, regs));
    checks.get('a')!.set('fail');
    const leader = await cluster.leader();
    await leader.kill();
    const killedAt = performance.now();
    // Flip while a new leader is elected: b goes down and comes back, c goes down.
    checks.get('b')!.set('throw');
    await eventually(() => assert.equal(regs.get('b')!.health?.healthy, false));
    checks.get('b')!.set('pass');
    checks.get('c')!.set('fail');
    await eventually(() => assert.equal(regs.get('c')!.health?.healthy, false));
    await eventually(() => assert.equal(regs.get('b')!.health?.healthy, true));
    const truth = await eventually(() => converged(registry, sets, regs), { timeout: 30_000 });
    t.diagnostic(
      `leader ${leader.name} killed; ${sets.length} consumers converged on the flipped ` +
        `health ${(performance.now() - killedAt).toFixed(0)} ms later`,
    );
    assert.deepEqual(
      truth.map((i) => [i.id, i.healthy]),
      [
        ['a', false],
        ['b', true],
        ['c', false],
      ],
    );
    for (const set of sets) {
      assert.deepEqual(ids(set.candidates()), ['b']);
      assert.equal(set.pick()?.id, 'b');
    }
    for (const reg of regs.values()) assert.ok(reg.active, `${reg.id} still registered`);
  } finally {
    await registry.close();
    for (const set of sets) await set.close();
    for (const client of consumers) await client.close();
  }
});
