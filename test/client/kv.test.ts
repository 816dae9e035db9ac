// get, set, setnx, setx and delete against a real etcd, and the seed's examples.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, type EtcdOptions, InvalidArgumentError, KeyNotFoundError } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('kv'), ...options });
}

describe('get', () => {
  test('a missing key reads as undefined', async () => {
    await using client = connect();
    assert.equal(await client.get('missing'), undefined);
  });

  test('returns the pair with its metadata', async () => {
    await using client = connect();
    const first = await client.set('k', { n: 1 });
    const kv = await client.get('k');
    assert.ok(kv);
    assert.equal(kv.key, 'k');
    assert.deepEqual(Buffer.from(kv.keyBytes), Buffer.from('k'));
    assert.deepEqual(kv.value, { n: 1 });
    assert.equal(Buffer.from(kv.valueBytes).toString(), '{"n":1}');
    assert.equal(typeof kv.createRevision, 'bigint');
    assert.equal(kv.createRevision, first.revision);
    assert.equal(kv.modRevision, first.revision);
    assert.equal(kv.version, 1);
    assert.equal(kv.lease, 0n);
    // bigint fields do not stop JSON.stringify.
    assert.deepEqual(JSON.parse(JSON.stringify(kv)).key, 'k');

    const second = await client.set('k', { n: 2 });
    assert.ok(second.revision > first.revision);
    const again = await client.get('k');
    assert.equal(again?.createRevision, first.revision);
    assert.equal(again?.modRevision, second.revision);
    assert.equal(again?.version, 2);
    assert.deepEqual(again?.value, { n: 2 });
  });

  test('revision reads an older value', async () => {
    await using client = connect();
    const v1 = await client.set('k', 'one');
    const v2 = await client.set('k', 'two');
    await client.set('k', 'three');
    assert.equal((await client.get('k'))?.value, 'three');
    assert.equal((await client.get('k', { revision: v1.revision }))?.value, 'one');
    assert.equal((await client.get('k', { revision: v2.revision }))?.value, 'two');
    assert.equal((await client.get('k', { revision: Number(v1.revision) }))?.value, 'one');
    assert.equal(await client.get('k', { revision: v1.revision - 1n }), undefined);
    // Revision 0 means the newest, as in the seed.
    assert.equal((await client.get('k', { revision: 0 }))?.value, 'three');
    await client.delete('k');
    assert.equal((await client.get('k', { revision: v2.revision }))?.value, 'two');
  });

  test('serializable reads the value', async () => {
    await using client = connect();
    await client.set('k', 'v');
    assert.equal((await client.get('k', { serializable: true }))?.value, 'v');
    assert.equal((await client.get('k', { serializable: false }))?.value, 'v');
  });
});

describe('set', () => {
  test('creates and overwrites, returning the revision', async () => {
    await using client = connect();
    const a = await client.set('k', 1);
    const b = await client.set('k', 2);
    assert.equal(typeof a.revision, 'bigint');
    assert.ok(b.revision > a.revision);
    assert.equal(a.prevKv, undefined);
    assert.equal(b.prevKv, undefined, 'no prevKv unless asked for');
    assert.equal((await client.get('k'))?.value, 2);
  });

  test('prevKv returns the pair before the put', async () => {
    await using client = connect();
    const first = await client.set('k', 'old', { prevKv: true });
    assert.equal(first.prevKv, undefined, 'nothing before the first put');
    const second = await client.set('k', 'new', { prevKv: true });
    assert.ok(second.prevKv);
    assert.equal(second.prevKv.key, 'k');
    assert.equal(second.prevKv.value, 'old');
    assert.equal(second.prevKv.modRevision, first.revision);
    assert.equal(second.prevKv.version, 1);
  });

  test('lease attaches the key to a lease', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.set('k', 'v', { lease: lease.id });
    assert.equal((await client.get('k'))?.lease, lease.id);
    assert.deepEqual((await client.timetolive(lease.id, { keys: true }))?.keys, ['k']);
    await client.revoke(lease.id);
    assert.equal(await client.get('k'), undefined);
  });

  test('ignoreValue keeps the stored value and changes the rest', async () => {
    await using client = connect();
    await client.set('k', { keep: true });
    const lease = await client.grant(60);
    await client.set('k', undefined, { ignoreValue: true, lease: lease.id });
    const kv = await client.get('k');
    assert.deepEqual(kv?.value, { keep: true });
    assert.equal(kv?.version, 2);
    assert.equal(kv?.lease, lease.id);
    await client.revoke(lease.id);
  });

  test('ignoreLease keeps the stored lease and changes the value', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.set('k', 'one', { lease: lease.id });
    await client.set('k', 'two', { ignoreLease: true });
    const kv = await client.get('k');
    assert.equal(kv?.value, 'two');
    assert.equal(kv?.lease, lease.id);
    // Without ignoreLease a put detaches the key from its lease.
    await client.set('k', 'three');
    assert.equal((await client.get('k'))?.lease, 0n);
    await client.revoke(lease.id);
  });

  test('ignoreValue or ignoreLease on a missing key rejects with KeyNotFoundError', async () => {
    await using client = connect();
    await assert.rejects(
      client.set('missing', undefined, { ignoreValue: true }),
      (err: unknown) => err instanceof KeyNotFoundError && err.code === 'ETCDKIT_KEY_NOT_FOUND',
    );
    await assert.rejects(client.set('missing', 1, { ignoreLease: true }), KeyNotFoundError);
    assert.equal(await client.get('missing'), undefined);
  });

  test('lease with ignoreLease, or a value with ignoreValue, is an InvalidArgumentError', async () => {
    await using client = connect();
    await client.set('k', 'v');
    await assert.rejects(
      client.set('k', 'v', { lease: 1n, ignoreLease: true }),
      InvalidArgumentError,
    );
    await assert.rejects(client.set('k', 'w', { ignoreValue: true }), InvalidArgumentError);
    assert.equal((await client.get('k'))?.version, 1, 'nothing was written');
  });
});

describe('setnx', () => {
  test('creates a missing key', async () => {
    await using client = connect();
    const r = await client.setnx('k', 'first');
    assert.equal(r.succeeded, true);
    assert.equal(r.existing, undefined);
    const kv = await client.get('k');
    assert.equal(kv?.value, 'first');
    assert.equal(kv?.modRevision, r.revision);
  });

  test('leaves an existing key alone and returns it', async () => {
    await using client = connect();
    const created = await client.setnx('k', 'first');
    const r = await client.setnx('k', 'second');
    assert.equal(r.succeeded, false);
    assert.ok(r.existing);
    assert.equal(r.existing.key, 'k');
    assert.equal(r.existing.value, 'first');
    assert.equal(r.existing.createRevision, created.revision);
    assert.equal(r.revision, created.revision, 'nothing was written');
    assert.equal((await client.get('k'))?.value, 'first');
  });

  test('creates again after a delete', async () => {
    await using client = connect();
    await client.setnx('k', 1);
    await client.delete('k');
    assert.equal((await client.setnx('k', 2)).succeeded, true);
    assert.equal((await client.get('k'))?.value, 2);
  });

  test('lease attaches the created key', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.setnx('k', 1, { lease: lease.id });
    assert.equal((await client.get('k'))?.lease, lease.id);
    await client.revoke(lease.id);
  });
});

describe('setx', () => {
  test('does nothing to a missing key', async () => {
    await using client = connect();
    const r = await client.setx('k', 'v');
    assert.equal(r.succeeded, false);
    assert.equal(r.prevKv, undefined);
    assert.equal(await client.get('k'), undefined);
  });

  test('updates an existing key', async () => {
    await using client = connect();
    await client.set('k', 'old');
    const r = await client.setx('k', 'new');
    assert.equal(r.succeeded, true);
    assert.equal(r.prevKv, undefined, 'no prevKv unless asked for');
    const kv = await client.get('k');
    assert.equal(kv?.value, 'new');
    assert.equal(kv?.version, 2);
    assert.equal(kv?.modRevision, r.revision);
  });

  test('prevKv returns the pair before the update', async () => {
    await using client = connect();
    await client.set('k', 'old');
    const r = await client.setx('k', 'new', { prevKv: true });
    assert.equal(r.succeeded, true);
    assert.equal(r.prevKv?.key, 'k');
    assert.equal(r.prevKv?.value, 'old');
    const missing = await client.setx('other', 'x', { prevKv: true });
    assert.equal(missing.succeeded, false);
    assert.equal(missing.prevKv, undefined);
  });

  test('lease attaches the updated key', async () => {
    await using client = connect();
    await client.set('k', 1);
    const lease = await client.grant(60);
    await client.setx('k', 2, { lease: lease.id });
    assert.equal((await client.get('k'))?.lease, lease.id);
    await client.revoke(lease.id);
  });
});

describe('delete', () => {
  test('counts 1 for an existing key and 0 for a missing one', async () => {
    await using client = connect();
    await client.set('k', 1);
    const first = await client.delete('k');
    assert.equal(first.deleted, 1);
    assert.equal(first.prevKv, undefined);
    assert.equal(typeof first.revision, 'bigint');
    assert.equal(await client.get('k'), undefined);
    const second = await client.delete('k');
    assert.equal(second.deleted, 0);
    assert.equal(second.revision, first.revision, 'deleting nothing writes nothing');
  });

  test('prevKv returns the deleted pair', async () => {
    await using client = connect();
    await client.set('k', { was: 'here' });
    const r = await client.delete('k', { prevKv: true });
    assert.equal(r.deleted, 1);
    assert.equal(r.prevKv?.key, 'k');
    assert.deepEqual(r.prevKv?.value, { was: 'here' });
    const none = await client.delete('k', { prevKv: true });
    assert.equal(none.prevKv, undefined);
  });

  test('deletes only the key itself, not keys it prefixes', async () => {
    await using client = connect();
    await client.set('k', 1);
    await client.set('k2', 2);
    await client.set('k/child', 3);
    assert.equal((await client.delete('k')).deleted, 1);
    assert.equal((await client.get('k2'))?.value, 2);
    assert.equal((await client.get('k/child'))?.value, 3);
  });
});

describe('the seed API examples', () => {
  test("cli:get('/path/to/key')", async () => {
    await using client = connect();
    await client.set('/path/to/key', 'val');
    assert.equal((await client.get('/path/to/key'))?.value, 'val');
  });

  test("cli:set('/path/to/key', 'val', 10) is set with { ttl: 10 }", async () => {
    await using client = connect();
    await client.set('/path/to/key', 'val', { ttl: 10 });
    const kv = await client.get('/path/to/key');
    assert.equal(kv?.value, 'val');
    assert.notEqual(kv?.lease, 0n);
    const info = await client.timetolive(kv!.lease, { keys: true });
    assert.equal(info?.grantedTtl, 10);
    assert.deepEqual(info?.keys, ['/path/to/key']);
    await client.revoke(kv!.lease);
  });

  test("cli:setnx('/path/to/key', 'val', 10) and cli:setx(...) with { ttl: 10 }", async () => {
    await using client = connect();
    const nx = await client.setnx('/path/to/key', 'val', { ttl: 10 });
    assert.equal(nx.succeeded, true);
    const created = await client.get('/path/to/key');
    assert.equal((await client.timetolive(created!.lease))?.grantedTtl, 10);
    const x = await client.setx('/path/to/key', 'val2', { ttl: 10 });
    assert.equal(x.succeeded, true);
    const updated = await client.get('/path/to/key');
    assert.equal(updated?.value, 'val2');
    assert.equal((await client.timetolive(updated!.lease))?.grantedTtl, 10);
    await client.revoke(created!.lease);
    await client.revoke(updated!.lease).catch(() => undefined);
  });

  test("cli:delete('/path/to/key')", async () => {
    await using client = connect();
    await client.set('/path/to/key', 'val');
    assert.equal((await client.delete('/path/to/key')).deleted, 1);
    assert.equal(await client.get('/path/to/key'), undefined);
  });

  test('grant(5), set with the lease, revoke, then get returns nothing', async () => {
    await using client = connect();
    const res = await client.grant(5);
    await client.set('/path/to/key', 'val', { lease: res.id });
    assert.equal((await client.get('/path/to/key'))?.lease, res.id);
    await client.revoke(res.id);
    assert.equal(await client.get('/path/to/key'), undefined);
  });

  test("cli:readdir('/path/to/dir') and cli:rmdir('/path/to/dir')", async () => {
    await using client = connect();
    await client.set('/path/to/dir/a', 1);
    await client.set('/path/to/dir/b', 2);
    const dir = await client.readdir('/path/to/dir');
    assert.deepEqual(
      dir.kvs.map((kv) => [kv.key, kv.value]),
      [
        ['/path/to/dir/a', 1],
        ['/path/to/dir/b', 2],
      ],
    );
    assert.equal((await client.rmdir('/path/to/dir')).deleted, 2);
    assert.equal((await client.readdir('/path/to/dir')).count, 0);
  });

  test('version() and leases()', async () => {
    await using client = connect();
    assert.match((await client.version()).server, /^3\./);
    const lease = await client.grant(5);
    assert.ok((await client.leases()).includes(lease.id));
    await client.revoke(lease.id);
  });
});
