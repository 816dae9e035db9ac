// Health checks: an instance's own check flips `healthy` in its stored record
// after its thresholds, other clients see it, and pickers pass unhealthy
// instances over unless none is healthy.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, InvalidArgumentError, TimeoutError } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { NoInstancesError, Registry, type ServiceSet } from '@etcdkit/registry';
import { ids } from './helpers.js';
import { SwitchableCheck } from './switchable-check.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const at = (id: string, port = 9000) => ({ id, address: '127.0.0.1', port });

/** A producer and a consumer on clients of their own, under a fresh prefix. */
async function pair(label: string) {
  const prefix = uniquePrefix(label);
  const producerClient = new Etcd({ endpoints: etcd.endpoint });
  const consumerClient = new Etcd({ endpoints: etcd.endpoint });
  const producer = new Registry(producerClient, { prefix, ttl: 30 });
  const consumer = new Registry(consumerClient, { prefix });
  return {
    producer,
    consumer,
    async [Symbol.asyncDispose]() {
      await producer.close();
      await consumer.close();
      await producerClient.close();
      await consumerClient.close();
    },
  };
}

const healthOf = (set: ServiceSet, id: string) => set.get(id)?.healthy;

test('health changes after the thresholds are stored on the lease and seen by another client', async () => {
  await using p = await pair('registry-health-flip');
  const check = new SwitchableCheck();
  const registration = await p.producer.register('api', at('a'), {
    health: { check: check.check, interval: 10, failureThreshold: 3, successThreshold: 2 },
  });
  assert.equal(registration.health?.healthy, true, 'the first check passed');
  const set = await p.consumer.discover('api');
  const seen: boolean[] = [];
  set.on('updated', (i, previous) => {
    if (i.healthy !== previous.healthy) seen.push(i.healthy);
  });
  assert.equal(healthOf(set, 'a'), true);
  assert.ok(set.get('a')?.healthSince instanceof Date);

  // Counted when the registration decides: exactly the threshold's worth of checks.
  const decidedAfter: number[] = [];
  registration.on('healthChanged', () => decidedAfter.push(check.sinceSwitch));
  check.set('fail');
  await eventually(() => assert.equal(healthOf(set, 'a'), false));
  const down = set.get('a')!;
  assert.equal(down.healthReason, 'the check reported unhealthy');
  assert.equal(down.lease, registration.lease, 'written on the registration lease');
  assert.equal(down.status, 'up', 'unhealthy is not draining');

  check.set('pass');
  await eventually(() => assert.equal(healthOf(set, 'a'), true));
  assert.equal(set.get('a')?.healthReason, undefined);
  assert.deepEqual(decidedAfter, [3, 2]);
  assert.deepEqual(seen, [false, true], 'each transition seen once, in order');
  assert.ok(set.get('a')!.healthSince! >= down.healthSince!);
  const [read] = await p.consumer.instances('api');
  assert.equal(read?.healthy, true, 'a plain read agrees');
});

test('an instance whose first check fails registers as unhealthy', async () => {
  await using p = await pair('registry-health-first');
  const check = new SwitchableCheck('throw');
  const registration = await p.producer.register('api', at('a'), {
    health: { check: check.check, interval: 60_000 },
  });
  assert.equal(registration.health?.healthy, false);
  const [stored] = await p.consumer.instances('api');
  assert.deepEqual([stored?.healthy, stored?.healthReason], [false, 'database unreachable']);
  assert.equal(check.calls, 1);
});

test('unhealthy instances are not picked while a healthy one exists; otherwise the fallback decides', async () => {
  await using p = await pair('registry-health-pick');
  const checks = { a: new SwitchableCheck(), b: new SwitchableCheck('fail') };
  for (const id of ['a', 'b'] as const) {
    await p.producer.register('api', at(id), {
      health: { check: checks[id].check, interval: 10, failureThreshold: 1 },
    });
  }
  // A plain registration, without a check, counts as healthy.
  await p.producer.register('api', at('c'));
  const set = await p.consumer.discover('api');
  assert.deepEqual(ids(set.candidates()), ['a', 'c']);
  assert.deepEqual(ids(set.candidates({ includeUnhealthy: true })), ['a', 'b', 'c']);
  const picked = new Set(Array.from({ length: 12 }, () => set.pick()?.id));
  assert.deepEqual([...picked].sort(), ['a', 'c']);
  assert.equal(
    set.pick('round-robin', { filter: (i) => i.id === 'b' })?.id,
    'b',
    'the fallback within the filter',
  );
  assert.equal(set.pick('random', { filter: (i) => i.id === 'b', fallback: false }), undefined);

  await p.producer.close();
  await p.producer.register('api', at('b'), {
    health: { check: checks.b.check, interval: 10, failureThreshold: 1 },
  });
  const a = await p.producer.register('api', at('a'), {
    health: { check: checks.a.check, interval: 10, failureThreshold: 1 },
  });
  checks.a.set('fail');
  await eventually(() => assert.deepEqual(ids(set), ['a', 'b']));
  await eventually(() => assert.equal(healthOf(set, 'a'), false));
  assert.equal(a.health?.healthy, false);
  // None healthy: by default pick among all; with fallback: false, none.
  assert.deepEqual(ids(set.candidates()), ['a', 'b']);
  assert.ok(['a', 'b'].includes(set.pick('weighted')?.id ?? ''));
  assert.equal(set.pick('round-robin', { fallback: false }), undefined);
  assert.deepEqual(set.candidates({ fallback: false }), []);
  await assert.rejects(set.ready({ healthy: true, timeout: 50 }), NoInstancesError);
  assert.equal((await set.ready()).length, 2, 'up is enough without healthy: true');

  const healthy = set.ready({ healthy: true });
  checks.b.set('pass');
  await healthy;
  assert.equal(healthOf(set, 'b'), true);
  assert.deepEqual(ids(set.candidates()), ['b']);
  assert.equal(set.pick()?.id, 'b');
});

test('a check that throws, times out or ignores its signal fails with a reason; checks never overlap', async () => {
  await using p = await pair('registry-health-timeout');
  const check = new SwitchableCheck();
  const registration = await p.producer.register('api', at('a'), {
    health: { check: check.check, interval: 10, timeout: 50, failureThreshold: 2 },
  });
  const set = await p.consumer.discover('api');
  const reasons = () => set.get('a')?.healthReason;

  check.set('throw');
  await eventually(() => assert.equal(reasons(), 'database unreachable'));
  check.set('pass');
  await eventually(() => assert.equal(healthOf(set, 'a'), true));

  check.set('hang-abortable');
  await eventually(() => assert.equal(reasons(), 'timed out after 50 ms'));
  assert.ok(check.abortReasons[0] instanceof TimeoutError, 'the late check was aborted');
  check.set('pass');
  await eventually(() => assert.equal(healthOf(set, 'a'), true));

  // This one ignores its signal: no new check starts while it runs, and each round counts.
  const callsBefore = check.calls;
  check.set('hang');
  await eventually(() => assert.equal(healthOf(set, 'a'), false));
  assert.equal(check.calls, callsBefore + 1, 'one hanging call, not one a round');
  assert.equal(check.running, 1);
  assert.match(reasons() ?? '', /still running|timed out/);
  check.set('pass');
  check.release();
  await eventually(() => assert.equal(healthOf(set, 'a'), true));
  assert.equal(check.maxRunning, 1, 'never two checks at once');
  assert.equal(registration.health?.healthy, true);
});

test('health options are checked before anything is written', async () => {
  await using p = await pair('registry-health-options');
  const check = () => true;
  const bad: unknown[] = [
    null,
    {},
    { check: 'yes' },
    { check, interval: 0 },
    { check, timeout: -1 },
    { check, interval: Number.NaN },
    { check, failureThreshold: 0 },
    { check, successThreshold: 1.5 },
    { check, retries: 3 },
  ];
  for (const health of bad) {
    await assert.rejects(
      // @ts-expect-error: wrong on purpose
      p.producer.register('api', at('a'), { health }),
      InvalidArgumentError,
      JSON.stringify(health),
    );
  }
  for (const ejection of [{ errors: 0 }, { window: 0 }, { duration: 'long' }, { after: 1 }]) {
    // @ts-expect-error: wrong on purpose
    await assert.rejects(p.consumer.discover('api', { ejection }), InvalidArgumentError);
  }
  const set = await p.consumer.discover('api');
  // @ts-expect-error: wrong on purpose
  assert.throws(() => set.pick('random', { fallback: 'no' }), InvalidArgumentError);
  // @ts-expect-error: wrong on purpose
  await assert.rejects(set.ready({ healthy: 1 }), InvalidArgumentError);
  assert.deepEqual(await p.consumer.instances('api'), [], 'nothing was written');
});
