// Registrations: the stored value and its lease, deregistration (at once, drained,
// idempotent), updates, coming back after the lease is revoked from outside, and
// sessions given by the caller.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { Etcd, type EtcdOptions, type SessionExpiredError } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { DeregisteredError, type Registration, Registry, WIRE_VERSION } from '@etcdkit/registry';
import { ids, storedJson } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, ...options });
}

function registryOn(client: Etcd, ttl = 5): Registry {
  return new Registry(client, { prefix: uniquePrefix('registry'), ttl });
}

describe('register', () => {
  test('stores the versioned JSON value under <prefix>/<service>/<id> on its lease', async () => {
    await using client = connect();
    const registry = registryOn(client);
    const before = Date.now();
    await using reg = await registry.register(
      'api',
      {
        id: 'api-1',
        address: '10.0.0.5',
        port: 8080,
        metadata: { version: '1.4.2', tags: ['a', 'b'], nested: { ok: true } },
        weight: 2.5,
        zone: 'eu-west-1a',
      },
      { ttl: 7 },
    );
    assert.equal(reg.key, `${registry.prefix}/api/api-1`);
    assert.equal(reg.service, 'api');
    assert.equal(reg.id, 'api-1');
    assert.ok(reg.active);
    assert.equal(reg.status, 'up');
    const value = await storedJson(etcd.endpoint, reg.key);
    assert.ok(value);
    const { registeredAt, ...rest } = value;
    assert.deepEqual(rest, {
      v: WIRE_VERSION,
      id: 'api-1',
      address: '10.0.0.5',
      port: 8080,
      metadata: { version: '1.4.2', tags: ['a', 'b'], nested: { ok: true } },
      weight: 2.5,
      zone: 'eu-west-1a',
      status: 'up',
    });
    const at = Date.parse(String(registeredAt));
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, String(registeredAt));
    // The key is on the registration's own lease, granted with the asked TTL.
    const kv = await client.get(reg.key);
    assert.equal(kv?.lease, reg.lease);
    const info = await client.timetolive(reg.lease!, { keys: true });
    assert.equal(info?.grantedTtl, 7);
    assert.deepEqual(info?.keys, [reg.key]);
  });

  test('defaults: a random UUID as id, weight 1, no zone, empty metadata, the registry TTL', async () => {
    await using client = connect();
    const registry = registryOn(client, 9);
    await using reg = await registry.register('api', { address: 'api.internal', port: 80 });
    assert.match(reg.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const value = await storedJson(etcd.endpoint, reg.key);
    assert.equal(value?.weight, 1);
    assert.deepEqual(value?.metadata, {});
    assert.ok(!('zone' in (value ?? {})));
    assert.equal((await client.timetolive(reg.lease!))?.grantedTtl, 9);
  });

  test("works whatever the client's codec and keyPrefix", async () => {
    const keyPrefix = uniquePrefix('registry-codec');
    await using client = new Etcd<string>({
      endpoints: etcd.endpoint,
      keyPrefix,
      codec: 'string',
    });
    const registry = new Registry(client);
    assert.equal(registry.prefix, '/services');
    await using reg = await registry.register('api', { id: 'a', address: '::1', port: 443 });
    const value = await storedJson(etcd.endpoint, `${keyPrefix}/services/api/a`);
    assert.equal(value?.address, '::1');
    await using set = await registry.discover('api');
    assert.deepEqual(ids(set), ['a']);
    assert.equal(set.get('a')?.host, '[::1]:443');
    assert.deepEqual(await registry.services(), ['api']);
    assert.ok(reg.active);
  });
});

describe('deregister', () => {
  test('removes the key at once, revokes the lease, and is idempotent', async (t) => {
    await using client = connect();
    const registry = registryOn(client, 30);
    await using consumer = connect();
    await using set = await new Registry(consumer, { prefix: registry.prefix }).discover('api');
    const reg = await registry.register('api', { id: 'x', address: '127.0.0.1', port: 1 });
    await eventually(() => assert.deepEqual(ids(set), ['x']));
    const lease = reg.lease!;
    let deregistered = 0;
    reg.on('deregistered', () => deregistered++);
    const removed = new Promise<number>((resolve) =>
      set.once('removed', () => resolve(performance.now())),
    );
    const start = performance.now();
    const first = reg.deregister();
    const second = reg.deregister();
    await Promise.all([first, second]);
    assert.equal(
      await storedJson(etcd.endpoint, reg.key),
      undefined,
      'gone as soon as it resolves',
    );
    assert.equal(await client.timetolive(lease), undefined, 'the lease is revoked');
    const seenAt = await removed;
    t.diagnostic(`clean deregister seen by a consumer after ${(seenAt - start).toFixed(1)} ms`);
    await reg.deregister();
    await reg[Symbol.asyncDispose]();
    assert.equal(deregistered, 1);
    assert.equal(reg.deregistered, true);
    assert.equal(reg.active, false);
    await assert.rejects(reg.update({ weight: 2 }), DeregisteredError);
    assert.deepEqual(ids(set), []);
  });

  test('drain: stored as draining, not picked, then removed', async () => {
    await using client = connect();
    const registry = registryOn(client, 30);
    await using set = await registry.discover('api');
    const a = await registry.register('api', { id: 'a', address: '127.0.0.1', port: 1 });
    await using b = await registry.register('api', { id: 'b', address: '127.0.0.1', port: 2 });
    await eventually(() => assert.deepEqual(ids(set), ['a', 'b']));
    const statuses: string[] = [];
    set.on('updated', (instance) => statuses.push(`${instance.id}:${instance.status}`));
    const done = a.deregister({ drain: 600 });
    await eventually(() => assert.equal(set.get('a')?.status, 'draining'));
    assert.equal(a.status, 'draining');
    for (let i = 0; i < 10; i++)
      assert.equal(set.pick()?.id, 'b', 'a draining instance is not picked');
    assert.ok(set.get('a'), 'still listed while draining');
    await done;
    await eventually(() => assert.deepEqual(ids(set), ['b']));
    assert.deepEqual(statuses, ['a:draining']);
    assert.ok(b.active);
  });

  test('registry.close() deregisters every registration and closes every set', async () => {
    await using client = connect();
    const registry = registryOn(client, 30);
    const regs = await Promise.all(
      ['a', 'b', 'c'].map((id) => registry.register('svc', { id, address: '127.0.0.1', port: 9 })),
    );
    const set = await registry.discover('svc');
    await eventually(() => assert.equal(set.size, 3));
    await registry.close();
    assert.ok(regs.every((r) => r.deregistered));
    assert.equal(set.open, false);
    assert.deepEqual(await registry.instances('svc'), []);
  });
});

describe('update', () => {
  test('rewrites the value; consumers see one update per change', async () => {
    await using client = connect();
    const registry = registryOn(client, 30);
    await using set = await registry.discover('api');
    await using reg = await registry.register('api', {
      id: 'u',
      address: '127.0.0.1',
      port: 1,
      zone: 'z1',
    });
    await eventually(() => assert.ok(set.get('u')));
    const seen: Array<[number, number]> = [];
    set.on('updated', (now, previous) => seen.push([previous.weight, now.weight]));
    const revisions: bigint[] = [];
    reg.on('updated', (revision) => revisions.push(revision));
    await reg.update({ weight: 3 });
    await reg.update({ weight: 4, metadata: { v: 2 }, zone: null });
    await eventually(() =>
      assert.deepEqual(seen, [
        [1, 3],
        [3, 4],
      ]),
    );
    assert.equal(revisions.length, 2);
    const now = set.get('u');
    assert.deepEqual(now?.metadata, { v: 2 });
    assert.equal(now?.zone, undefined);
    assert.equal(now?.lease, reg.lease, 'the lease is kept');
    assert.ok(Object.isFrozen(now) && Object.isFrozen(now?.metadata), 'instances are frozen');
  });
});

describe('lease loss', () => {
  test('a registration whose lease is revoked from outside comes back by itself', async (t) => {
    await using client = connect();
    const registry = registryOn(client, 2);
    await using admin = connect();
    await using set = await new Registry(admin, { prefix: registry.prefix }).discover('api');
    await using reg = await registry.register('api', { id: 'r', address: '127.0.0.1', port: 1 });
    await eventually(() => assert.ok(set.get('r')));
    const first = reg.lease!;
    const registeredAt = (await storedJson(etcd.endpoint, reg.key))?.registeredAt;
    const events: string[] = [];
    const lost = new Promise<SessionExpiredError>((resolve) => reg.once('lost', resolve));
    const back = new Promise<[bigint, number]>((resolve) =>
      reg.once('reregistered', (lease, downtime) => resolve([lease, downtime])),
    );
    set.on('removed', (i) => events.push(`removed ${i.id}`));
    set.on('added', (i) => events.push(`added ${i.id}`));
    const start = performance.now();
    await admin.revoke(first);
    await lost;
    const [lease, downtime] = await back;
    const elapsed = performance.now() - start;
    t.diagnostic(
      `revoked from outside: back after ${elapsed.toFixed(0)} ms (downtime since loss noticed: ${downtime.toFixed(0)} ms)`,
    );
    assert.notEqual(lease, first);
    assert.equal(reg.lease, lease);
    assert.ok(reg.active);
    assert.equal((await client.get(reg.key))?.lease, lease);
    await eventually(() => assert.deepEqual(events, ['removed r', 'added r']));
    assert.equal(set.get('r')?.lease, lease);
    // The first registration time is kept across re-registrations.
    assert.equal((await storedJson(etcd.endpoint, reg.key))?.registeredAt, registeredAt);
  });

  test('updates made while the lease is lost are written by the re-registration', async () => {
    await using client = connect();
    const registry = registryOn(client, 2);
    await using admin = connect();
    await using reg = await registry.register('api', { id: 'w', address: '127.0.0.1', port: 1 });
    const back = new Promise<bigint>((resolve) => reg.once('reregistered', resolve));
    const lost = new Promise<unknown>((resolve) => reg.once('lost', resolve));
    await admin.revoke(reg.lease!);
    await lost;
    await reg.update({ weight: 9 });
    const lease = await back;
    await eventually(async () => {
      const value = await storedJson(etcd.endpoint, reg.key);
      assert.equal(value?.weight, 9);
    });
    assert.equal((await client.get(reg.key))?.lease, lease);
  });

  test('etcd reporting the lease gone during an update starts re-registration at once', async () => {
    await using client = connect();
    // A long TTL: the session itself would notice only at its next keepalive, seconds away.
    const registry = registryOn(client, 30);
    await using admin = connect();
    await using reg = await registry.register('api', { id: 'g', address: '127.0.0.1', port: 1 });
    const failed: Error[] = [];
    reg.on('failed', (err) => failed.push(err));
    const back = new Promise<bigint>((resolve) => reg.once('reregistered', resolve));
    const first = reg.lease!;
    await admin.revoke(first);
    await reg.update({ weight: 6 });
    const lease = await back;
    assert.notEqual(lease, first);
    assert.deepEqual(failed, [], 'no failed attempt on the dead lease');
    assert.equal((await storedJson(etcd.endpoint, reg.key))?.weight, 6);
    assert.equal((await client.get(reg.key))?.lease, lease);
  });
});

describe('sessions given by the caller', () => {
  test('a given session carries the key; deregister deletes the key and leaves the session', async () => {
    await using client = connect();
    const registry = registryOn(client);
    await using session = await client.session({ ttl: 20 });
    const regs: Registration[] = [];
    for (const id of ['s1', 's2']) {
      regs.push(await registry.register('svc', { id, address: '127.0.0.1', port: 5 }, { session }));
    }
    for (const reg of regs) assert.equal(reg.lease, session.lease);
    await regs[0]!.deregister();
    assert.equal(await storedJson(etcd.endpoint, regs[0]!.key), undefined);
    assert.ok(session.alive, 'the given session is not closed');
    assert.ok(await storedJson(etcd.endpoint, regs[1]!.key));
    await session.close();
    assert.equal(await storedJson(etcd.endpoint, regs[1]!.key), undefined);
    await regs[1]!.deregister();
  });

  test("'shared' uses the client's shared session", async () => {
    await using client = connect();
    const registry = registryOn(client);
    await using reg = await registry.register(
      'svc',
      { id: 'sh', address: '127.0.0.1', port: 5 },
      { session: 'shared' },
    );
    assert.equal(reg.lease, (await client.sharedSession()).lease);
  });

  test('after a given session is lost, the registration continues on a session of its own', async () => {
    await using client = connect();
    const registry = registryOn(client);
    await using admin = connect();
    const session = await client.session({ ttl: 2 });
    await using reg = await registry.register(
      'svc',
      { id: 'g', address: '127.0.0.1', port: 5 },
      { session },
    );
    const back = new Promise<bigint>((resolve) => reg.once('reregistered', resolve));
    await admin.revoke(session.lease);
    const lease = await back;
    assert.notEqual(lease, session.lease);
    assert.equal((await client.timetolive(lease))?.grantedTtl, 2, 'same TTL as the given session');
    await reg.deregister();
    assert.equal(await client.timetolive(lease), undefined, 'its own lease is revoked');
  });
});
