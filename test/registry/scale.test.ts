// 5,000 instances across 50 services: a new consumer's first listing of every service
// is exact, and what it costs in memory and time is printed.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry, type ServiceSet } from '@etcdkit/registry';
import { heapUsedAfterGc, mb } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const SERVICES = 50;
const PER_SERVICE = 100;
const PARALLEL = 64;

const serviceName = (s: number) => `svc-${String(s).padStart(2, '0')}`;
const instanceId = (s: number, i: number) => `${serviceName(s)}-${String(i).padStart(3, '0')}`;

test('5,000 instances across 50 services: a new consumer syncs them exactly', async (t) => {
  const prefix = uniquePrefix('registry-scale');
  await using producer = new Etcd({ endpoints: etcd.endpoint });
  const registry = new Registry(producer, { prefix });
  // One session carries every registration, as a process hosting many instances would.
  await using session = await producer.session({ ttl: 60 });
  const jobs: Array<[number, number]> = [];
  for (let s = 0; s < SERVICES; s++) for (let i = 0; i < PER_SERVICE; i++) jobs.push([s, i]);
  const registerStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < jobs.length) {
        const [s, i] = jobs[next++]!;
        await registry.register(
          serviceName(s),
          {
            id: instanceId(s, i),
            address: `10.${s}.${i >> 8}.${i & 255}`,
            port: 8000 + i,
            weight: 1 + (i % 5),
            zone: `zone-${i % 3}`,
            metadata: { version: '1.0.0', shard: i },
          },
          { session },
        );
      }
    }),
  );
  t.diagnostic(
    `registered ${jobs.length} instances in ${(performance.now() - registerStart).toFixed(0)} ms`,
  );

  await using consumer = new Etcd({ endpoints: etcd.endpoint });
  const discovery = new Registry(consumer, { prefix });
  const heapBefore = heapUsedAfterGc();
  const syncStart = performance.now();
  const names = await discovery.services();
  const sets: ServiceSet[] = await Promise.all(names.map((name) => discovery.discover(name)));
  const syncMs = performance.now() - syncStart;
  const heapAfter = heapUsedAfterGc();
  const heapDelta = heapAfter - heapBefore;
  try {
    assert.equal(names.length, SERVICES);
    assert.deepEqual(
      names,
      Array.from({ length: SERVICES }, (_, s) => serviceName(s)),
    );
    let total = 0;
    for (const [s, set] of sets.entries()) {
      const instances = set.instances();
      assert.equal(instances.length, PER_SERVICE, set.service);
      for (const [i, instance] of instances.entries()) {
        assert.equal(instance.id, instanceId(s, i));
        assert.equal(instance.service, serviceName(s));
        assert.equal(instance.address, `10.${s}.${i >> 8}.${i & 255}`);
        assert.equal(instance.port, 8000 + i);
        assert.equal(instance.weight, 1 + (i % 5));
        assert.equal(instance.zone, `zone-${i % 3}`);
        assert.deepEqual(instance.metadata, { version: '1.0.0', shard: i });
        assert.equal(instance.lease, session.lease);
        total++;
      }
      assert.equal(set.malformed().length, 0);
    }
    assert.equal(total, SERVICES * PER_SERVICE);
    t.diagnostic(
      `new consumer: services() and the first listing of ${SERVICES} sets (${total} instances) ` +
        `in ${syncMs.toFixed(0)} ms; heap after GC grew by ${mb(heapDelta)} ` +
        `(${Math.round(heapDelta / total)} bytes per instance; heap in use ${mb(heapAfter)}, ` +
        `rss ${mb(process.memoryUsage().rss)})`,
    );
    // The consumer's sets follow a change like any other.
    const set = sets[7]!;
    const removed = new Promise<string>((resolve) => set.once('removed', (i) => resolve(i.id)));
    await producer.delete(`${prefix.replace(/\/+$/, '')}/${serviceName(7)}/${instanceId(7, 42)}`);
    assert.equal(await removed, instanceId(7, 42));
    assert.equal(set.size, PER_SERVICE - 1);
  } finally {
    await Promise.all(sets.map((s) => s.close()));
  }
  // Closing the shared session removes all 5,000 keys at once.
  await session.close();
  assert.deepEqual(await discovery.services(), []);
});
