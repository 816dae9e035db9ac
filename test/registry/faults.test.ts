// Faults: consumers converge to the true set after the etcd leader is killed, and
// after changes and a compaction that happened while they were cut off.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Registration, Registry, type ServiceSet } from '@etcdkit/registry';
import { compactNow, tcpProxy } from './helpers.js';

const at = (id: string) => ({ id, address: '127.0.0.1', port: 9000 });

/** Each set holds exactly what `truth` read from etcd: same IDs, same revisions. */
async function converged(truthFrom: Registry, service: string, sets: ServiceSet[]) {
  const truth = await truthFrom.instances(service);
  const expected = truth.map((i) => `${i.id}@${i.modRevision}:${i.weight}`);
  for (const set of sets) {
    assert.deepEqual(
      set.instances().map((i) => `${i.id}@${i.modRevision}:${i.weight}`),
      expected,
    );
  }
  return truth;
}

test('consumers converge to the true set after the etcd leader is killed', async (t) => {
  await using cluster = await startEtcd({ members: 3 });
  const prefix = uniquePrefix('registry-leader');
  const endpoints = cluster.endpoints;
  await using producer = new Etcd({ endpoints });
  const registry = new Registry(producer, { prefix, ttl: 5 });
  const regs = new Map<string, Registration>();
  for (const id of ['a', 'b', 'c', 'd']) regs.set(id, await registry.register('api', at(id)));

  // Consumers whose first endpoint differs, so some of them are on the leader.
  const consumers = endpoints.map(
    (_, i) => new Etcd({ endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)] }),
  );
  const sets = await Promise.all(
    consumers.map((client) => new Registry(client, { prefix }).discover('api')),
  );
  try {
    await eventually(() => converged(registry, 'api', sets));
    const leader = await cluster.leader();
    await leader.kill();
    const killedAt = performance.now();
    // Change the set while the old leader is down and a new one is elected.
    await regs.get('a')!.deregister();
    regs.set('e', await registry.register('api', at('e')));
    await regs.get('b')!.update({ weight: 4 });
    const changedAt = performance.now();
    const truth = await eventually(() => converged(registry, 'api', sets), { timeout: 30_000 });
    t.diagnostic(
      `leader ${leader.name} killed: changes written ${(changedAt - killedAt).toFixed(0)} ms ` +
        `after the kill; ${sets.length} consumers converged ` +
        `${(performance.now() - changedAt).toFixed(0)} ms later`,
    );
    assert.deepEqual(
      truth.map((i) => i.id),
      ['b', 'c', 'd', 'e'],
    );
    assert.equal(truth.find((i) => i.id === 'b')?.weight, 4);
    for (const id of ['b', 'c', 'd', 'e']) assert.ok(regs.get(id)!.active, `${id} still active`);
  } finally {
    await registry.close();
    for (const set of sets) await set.close();
    for (const client of consumers) await client.close();
  }
});

test('a consumer cut off during changes and a compaction converges to the true set', async (t) => {
  await using etcd = await startEtcd();
  await using proxy = await tcpProxy(etcd.endpoint);
  const prefix = uniquePrefix('registry-compact');
  await using producer = new Etcd({ endpoints: etcd.endpoint });
  const registry = new Registry(producer, { prefix, ttl: 30 });
  const regs = new Map<string, Registration>();
  for (const id of ['a', 'b']) regs.set(id, await registry.register('api', at(id)));

  await using consumer = new Etcd({ endpoints: proxy.url });
  await using set = await new Registry(consumer, { prefix }).discover('api');
  // A change seen through the watch proves the watch is established before the cut.
  regs.set('c', await registry.register('api', at('c')));
  await eventually(() => assert.ok(set.get('c')));
  const events: string[] = [];
  set.on('added', (i) => events.push(`added ${i.id}`));
  set.on('updated', (i) => events.push(`updated ${i.id}`));
  set.on('removed', (i) => events.push(`removed ${i.id}`));
  let resynced = 0;
  set.on('resynced', () => resynced++);
  let interrupted = 0;
  set.on('interrupted', () => interrupted++);
  const stream = set.changes();
  try {
    await converged(registry, 'api', [set]);
    proxy.cut();
    // While the consumer is away: a removal, an addition, an update, and churn that
    // comes and goes, then a compaction of every revision it has not seen.
    await regs.get('a')!.deregister();
    regs.set('d', await registry.register('api', at('d')));
    await regs.get('b')!.update({ weight: 3 });
    for (let i = 0; i < 20; i++) {
      await (await registry.register('api', at(`tmp-${i}`))).deregister();
    }
    const compactedAt = await compactNow(etcd.endpoint);
    assert.ok(compactedAt > set.revision, 'the consumer is behind the compaction');
    proxy.restore();
    const restoredAt = performance.now();
    await eventually(() => converged(registry, 'api', [set]), { timeout: 30_000 });
    t.diagnostic(
      `reconnected after a compaction: converged ${(performance.now() - restoredAt).toFixed(0)} ms ` +
        `after the link came back (re-listed ${resynced}x, mirror failures ${interrupted})`,
    );
    assert.ok(resynced >= 1, 'the set was listed again');
    // Only the difference is reported, once each; the churn never shows.
    assert.deepEqual([...events].sort(), ['added d', 'removed a', 'updated b']);
    const streamed: string[] = [];
    for await (const change of stream) {
      streamed.push(`${change.type} ${change.instance.id}`);
      if (streamed.length === 3) break;
    }
    assert.deepEqual(streamed.sort(), ['added d', 'removed a', 'updated b']);
  } finally {
    await registry.close();
  }
});

test('a consumer whose cluster is replaced by one with older revisions converges to it', async (t) => {
  await using first = await startEtcd();
  await using second = await startEtcd();
  await using proxy = await tcpProxy(first.endpoint);
  const prefix = uniquePrefix('registry-replaced');
  await using oldProducer = new Etcd({ endpoints: first.endpoint });
  await using newProducer = new Etcd({ endpoints: second.endpoint });
  const oldRegistry = new Registry(oldProducer, { prefix, ttl: 30 });
  const newRegistry = new Registry(newProducer, { prefix, ttl: 30 });
  // Enough writes on the first cluster that the second one's revision is lower.
  for (let i = 0; i < 30; i++) await oldProducer.set(`${prefix}/filler`, i);
  for (const id of ['a', 'b']) await oldRegistry.register('api', at(id));
  for (const id of ['b', 'x']) await newRegistry.register('api', at(id));

  await using consumer = new Etcd({ endpoints: proxy.url });
  await using set = await new Registry(consumer, { prefix }).discover('api');
  // A change seen through the watch proves the watch is established on the first cluster.
  await oldRegistry.register('api', at('c'));
  await eventually(() => assert.ok(set.get('c')));
  const events: string[] = [];
  set.on('added', (i) => events.push(`added ${i.id}`));
  set.on('updated', (i) => events.push(`updated ${i.id}`));
  set.on('removed', (i) => events.push(`removed ${i.id}`));
  const interrupted = new Promise<Error>((resolve) => set.once('interrupted', resolve));
  try {
    await converged(oldRegistry, 'api', [set]);
    proxy.retarget(second.endpoint);
    proxy.cut();
    proxy.restore();
    const swappedAt = performance.now();
    const error = await interrupted;
    await eventually(() => converged(newRegistry, 'api', [set]), { timeout: 30_000 });
    t.diagnostic(
      `cluster replaced: interrupted by ${error.name}, converged after ` +
        `${(performance.now() - swappedAt).toFixed(0)} ms`,
    );
    assert.deepEqual(events.sort(), ['added x', 'removed a', 'removed c', 'updated b']);
    assert.ok(set.open);
  } finally {
    await oldRegistry.close();
    await newRegistry.close();
  }
});
