// An option given as `undefined` is an option not given: every method behaves as
// if the field were absent, and none rejects it as an unknown or invalid option.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, Op } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Mutex } from '@etcdkit/mutex';
import { DEFAULT_PREFIX, DEFAULT_TTL, DEFAULT_WEIGHT, Registry } from '@etcdkit/registry';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const call = { signal: undefined, timeout: undefined };

function connect(label: string): Etcd {
  return new Etcd({
    endpoints: etcd.endpoint,
    keyPrefix: uniquePrefix(label),
    ttl: undefined,
    timeout: undefined,
    apiPrefix: undefined,
    codec: undefined,
    tls: undefined,
    auth: undefined,
    maxRequestBytes: undefined,
    maxTxnOps: undefined,
    connections: undefined,
    autoSyncInterval: undefined,
    watch: { transport: undefined, progressInterval: undefined, progressTimeout: undefined },
  });
}

test('key-value calls take undefined for every option', async () => {
  await using client = connect('undefined-kv');
  const put = {
    lease: undefined,
    prevKv: undefined,
    ignoreValue: undefined,
    ignoreLease: undefined,
  };
  const range = {
    revision: undefined,
    limit: undefined,
    sortOrder: undefined,
    sortTarget: undefined,
    keysOnly: undefined,
    countOnly: undefined,
    serializable: undefined,
    minModRevision: undefined,
    maxModRevision: undefined,
    minCreateRevision: undefined,
    maxCreateRevision: undefined,
  };

  const set = await client.set('dir/a', { n: 1 }, { ...call, ...put, ttl: undefined });
  assert.equal(set.prevKv, undefined, 'prevKv: undefined returns no previous pair');
  await client.set('dir/b', 2);
  const a = await client.get('dir/a', { ...call, revision: undefined, serializable: undefined });
  assert.deepEqual(a?.value, { n: 1 });
  assert.equal(a?.lease, 0n, 'no ttl: no lease, as with the option absent');

  const created = await client.setnx('dir/a', 3, { ...call, lease: undefined, ttl: undefined });
  assert.equal(created.succeeded, false);
  assert.deepEqual(created.existing?.value, { n: 1 });
  const updated = await client.setx('dir/b', 4, {
    ...call,
    lease: undefined,
    ttl: undefined,
    prevKv: undefined,
  });
  assert.equal(updated.succeeded, true);
  assert.equal(updated.prevKv, undefined);

  const withUndefined = await client.readdir('dir/', { ...call, ...range });
  const without = await client.readdir('dir/');
  assert.deepEqual(
    withUndefined.kvs.map((kv) => [kv.key, kv.value]),
    without.kvs.map((kv) => [kv.key, kv.value]),
  );
  assert.equal(withUndefined.count, 2);
  assert.equal(withUndefined.more, false);

  const keys: string[] = [];
  const pages = {
    ...call,
    pageSize: undefined,
    revision: undefined,
    keysOnly: undefined,
    serializable: undefined,
  };
  for await (const kv of client.range('dir/', pages)) keys.push(kv.key);
  assert.deepEqual(keys, ['dir/a', 'dir/b']);

  const r = await client
    .txn()
    .success(
      Op.get('dir/a', range),
      Op.put('dir/c', 5, put),
      Op.delete('dir/b', { prevKv: undefined }),
    )
    .commit(call);
  assert.equal(r.succeeded, true);
  const raw = await client.txn(
    [{ target: 'VERSION', key: 'dir/c', result: undefined, version: undefined }],
    [{ requestRange: { key: 'dir/', prefix: true, limit: undefined, revision: undefined } }],
    [],
    call,
  );
  assert.equal(raw.succeeded, false, 'a version operand left undefined means 0, as when absent');

  const deleted = await client.delete('dir/c', { ...call, prevKv: undefined });
  assert.equal(deleted.deleted, 1);
  assert.equal(deleted.prevKv, undefined);
  const removed = await client.rmdir('dir/', { ...call, prevKv: undefined });
  assert.equal(removed.deleted, 1);
});

test('a mutex and an election take undefined for every option', async () => {
  await using client = connect('undefined-coordination');
  const mutex = new Mutex(client, 'lock');
  await using lock = await mutex.lock(call);
  assert.ok(lock.held);
  await using _tried = await new Mutex(client, 'other').tryLock({ signal: undefined });

  const election = new Election(client, 'leader', { session: undefined });
  await using leadership = await election.campaign('me', { signal: undefined });
  assert.equal((await election.leader(call))?.token, leadership.token);
  await leadership.proclaim('still me', call);
  assert.equal((await election.leader())?.value, 'still me');
  await leadership.resign(call);
});

test('a registry takes undefined for every option', async () => {
  await using client = connect('undefined-registry');
  await using registry = new Registry(client, { prefix: undefined, ttl: undefined });
  assert.equal(registry.prefix, DEFAULT_PREFIX);
  assert.equal(registry.ttl, DEFAULT_TTL);
  const registration = await registry.register(
    'api',
    {
      address: '127.0.0.1',
      port: 8080,
      id: undefined,
      metadata: undefined,
      weight: undefined,
      zone: undefined,
    },
    { ...call, ttl: undefined, session: undefined },
  );
  const set = await registry.discover('api', call);
  const ready = await set.ready({ timeout: undefined, signal: undefined });
  assert.equal(ready.length, 1);
  const picked = set.pick('round-robin', { filter: undefined });
  assert.equal(picked?.id, registration.id);
  assert.equal(picked?.weight, DEFAULT_WEIGHT);
  assert.deepEqual(picked?.metadata, {});
  await registration.update(
    {
      address: undefined,
      port: undefined,
      metadata: undefined,
      weight: undefined,
      zone: undefined,
      status: undefined,
    },
    call,
  );
  assert.deepEqual(
    (await registry.instances('api', call)).map((i) => [i.id, i.port, i.status]),
    [[registration.id, 8080, 'up']],
  );
  await registration.deregister({ ...call, drain: undefined });
  assert.deepEqual(await registry.instances('api'), []);
});
