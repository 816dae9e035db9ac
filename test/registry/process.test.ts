// Instances in processes of their own: one killed with SIGKILL disappears from every
// consumer once its lease runs out; one shut down cleanly disappears at once.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry, type ServiceSet } from '@etcdkit/registry';
import { startInstanceProcess } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const CONSUMERS = 3;
const TTL = 2;

/** Consumers on clients of their own, each following `service`, plus one live survivor. */
async function setUp(keyPrefix: string) {
  const clients = Array.from(
    { length: CONSUMERS + 1 },
    () => new Etcd({ endpoints: etcd.endpoint, keyPrefix }),
  );
  const sets: ServiceSet[] = [];
  for (const client of clients.slice(1)) sets.push(await new Registry(client).discover('api'));
  const survivor = await new Registry(clients[0]!, { ttl: 30 }).register('api', {
    id: 'survivor',
    address: '127.0.0.1',
    port: 7001,
  });
  const close = async () => {
    await survivor.deregister();
    for (const set of sets) await set.close();
    for (const client of clients) await client.close();
  };
  return { sets, close };
}

/** Resolves with the moment each set reports `id` removed. */
function removals(sets: ServiceSet[], id: string): Promise<number[]> {
  return Promise.all(
    sets.map(
      (set) =>
        new Promise<number>((resolve) => {
          const onRemoved = (instance: { id: string }) => {
            if (instance.id !== id) return;
            set.off('removed', onRemoved);
            resolve(performance.now());
          };
          set.on('removed', onRemoved);
        }),
    ),
  );
}

const present = (sets: ServiceSet[], id: string) =>
  assert.ok(
    sets.every((s) => s.get(id)),
    `${id} in every set`,
  );
const absent = (sets: ServiceSet[], id: string) =>
  assert.ok(
    sets.every((s) => !s.get(id) && s.get('survivor')),
    `${id} gone from every set, the survivor kept`,
  );

test('an instance process killed with SIGKILL is gone from every consumer within its TTL', async (t) => {
  const keyPrefix = uniquePrefix('registry-kill');
  const { sets, close } = await setUp(keyPrefix);
  try {
    const victim = await startInstanceProcess({
      endpoints: [etcd.endpoint],
      keyPrefix,
      service: 'api',
      id: 'victim',
      port: 7000,
      ttl: TTL,
    });
    await eventually(() => present(sets, 'victim'));
    const removed = removals(sets, 'victim');
    const killedAt = performance.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    // Bound generous enough for a loaded machine; the measured time is printed below.
    await eventually(() => absent(sets, 'victim'), { timeout: TTL * 1000 + 20_000 });
    const times = (await removed).map((at) => at - killedAt);
    t.diagnostic(
      `SIGKILL -> gone from all ${CONSUMERS} consumers after ${Math.max(...times).toFixed(0)} ms ` +
        `(TTL ${TTL} s; each: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms)`,
    );
    await using admin = new Etcd({ endpoints: etcd.endpoint });
    assert.equal(await admin.timetolive(victim.lease), undefined, 'its lease expired');
  } finally {
    await close();
  }
});

test('an instance process shut down cleanly is gone from every consumer at once', async (t) => {
  const keyPrefix = uniquePrefix('registry-term');
  const { sets, close } = await setUp(keyPrefix);
  try {
    const instance = await startInstanceProcess({
      endpoints: [etcd.endpoint],
      keyPrefix,
      service: 'api',
      id: 'leaving',
      port: 7000,
      ttl: 30,
    });
    await eventually(() => present(sets, 'leaving'));
    const removed = removals(sets, 'leaving');
    const stoppedAt = performance.now();
    instance.child.kill('SIGTERM');
    await eventually(() => absent(sets, 'leaving'), { timeout: 20_000 });
    const times = (await removed).map((at) => at - stoppedAt);
    t.diagnostic(
      `SIGTERM -> deregistered and gone from all ${CONSUMERS} consumers after ` +
        `${Math.max(...times).toFixed(0)} ms (lease TTL 30 s)`,
    );
    const [, signal] = (await instance.exited) as [number | null, string | null];
    assert.equal(signal, null, 'exited by itself');
    await using admin = new Etcd({ endpoints: etcd.endpoint });
    assert.equal(await admin.timetolive(instance.lease), undefined, 'its lease was revoked');
  } finally {
    await close();
  }
});
