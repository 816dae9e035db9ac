// Keys are bytes, not text; values go through the client's codec.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CodecError,
  type CodecFor,
  Compare,
  Etcd,
  type EtcdOptions,
  InvalidArgumentError,
  type JsonValue,
  Op,
} from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { b64, bytes, concatBytes, gateway, rawGet } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const hexKeys = (kvs: Array<{ keyBytes: Uint8Array }>) => kvs.map((kv) => hex(kv.keyBytes));

/** A json client, or one with the codec the caller names along with its value type. */
function connect<V = JsonValue>(options: EtcdOptions<V> = {}): Etcd<V> {
  const all = { endpoints: etcd.endpoint, keyPrefix: uniquePrefix('keys'), ...options };
  return new Etcd(all as EtcdOptions<V> & { codec: CodecFor<V> });
}

describe('binary keys', () => {
  test('non-UTF-8 keys round-trip byte for byte', async () => {
    const prefix = uniquePrefix('keys');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    const keys = [
      bytes(0xff, 0xfe, 0x00),
      bytes(0x00),
      bytes(0xff),
      bytes(0xc3, 0x28),
      bytes(0x80, 0x00, 0x80),
    ];
    for (const [i, key] of keys.entries()) await client.set(key, i);
    for (const [i, key] of keys.entries()) {
      const kv = await client.get(key);
      assert.ok(kv, hex(key));
      assert.equal(hex(kv.keyBytes), hex(key));
      assert.equal(kv.value, i);
      // What etcd stores is the prefix followed by exactly these bytes.
      const stored = await rawGet(etcd.endpoint, concatBytes(Buffer.from(prefix), key));
      assert.equal(stored?.key, b64(concatBytes(Buffer.from(prefix), key)));
    }
    const listed = await client.readdir('');
    assert.deepEqual(hexKeys(listed.kvs), keys.map(hex).sort());
    const ranged: string[] = [];
    for await (const kv of client.range('', { pageSize: 1 })) ranged.push(hex(kv.keyBytes));
    assert.deepEqual(ranged, keys.map(hex).sort());
    const deleted = await client.delete(bytes(0xff, 0xfe, 0x00), { prevKv: true });
    assert.equal(hex(deleted.prevKv!.keyBytes), 'fffe00');
    assert.equal(await client.get(bytes(0xff, 0xfe, 0x00)), undefined);
    assert.ok(await client.get(bytes(0xff)), 'a key that prefixes the deleted one stays');
  });

  test('a string key and its UTF-8 bytes are the same key', async () => {
    await using client = connect();
    await client.set('ключ/🔑', 1);
    const kv = await client.get(Uint8Array.from(Buffer.from('ключ/🔑')));
    assert.equal(kv?.value, 1);
    assert.equal(kv?.key, 'ключ/🔑');
  });

  test('a prefix ending in 0xFF covers exactly the keys that start with it', async () => {
    await using client = connect();
    const inside = [
      bytes(0x61, 0xff),
      bytes(0x61, 0xff, 0x00),
      bytes(0x61, 0xff, 0x01),
      bytes(0x61, 0xff, 0xff, 0xff),
    ];
    const outside = [
      bytes(0x61),
      bytes(0x61, 0xfe),
      bytes(0x61, 0xfe, 0xff),
      bytes(0x62),
      bytes(0x62, 0x00),
    ];
    for (const key of [...inside, ...outside]) await client.set(key, hex(key));
    const dir = bytes(0x61, 0xff);

    const listed = await client.readdir(dir);
    assert.deepEqual(hexKeys(listed.kvs), inside.map(hex));
    assert.equal(listed.count, inside.length);

    const ranged: string[] = [];
    for await (const kv of client.range(dir, { pageSize: 1 })) ranged.push(hex(kv.keyBytes));
    assert.deepEqual(ranged, inside.map(hex));

    const txn = await client
      .txn()
      .success(Op.readdir(dir, { countOnly: true }))
      .commit();
    const [counted] = txn.results;
    assert.equal(counted?.type === 'range' && counted.count, inside.length);

    const removed = await client.rmdir(dir, { prevKv: true });
    assert.deepEqual(hexKeys(removed.prevKvs), inside.map(hex));
    assert.deepEqual(hexKeys((await client.readdir('')).kvs), outside.map(hex));
  });

  test('a prefix of several 0xFF bytes carries over to the byte before them', async () => {
    await using client = connect();
    const inside = [bytes(0x01, 0xff, 0xff), bytes(0x01, 0xff, 0xff, 0x10)];
    const outside = [bytes(0x01, 0xff, 0xfe), bytes(0x02), bytes(0x02, 0x00, 0x00)];
    for (const key of [...inside, ...outside]) await client.set(key, 1);
    assert.deepEqual(hexKeys((await client.readdir(bytes(0x01, 0xff, 0xff))).kvs), inside.map(hex));
  });

  test('a keyPrefix ending in 0xFF keeps to its own keys', async () => {
    const base = Buffer.from(uniquePrefix('keys'));
    const prefix = concatBytes(base, bytes(0xff));
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using plain = new Etcd({ endpoints: etcd.endpoint });
    // Neighbours just below and just above the prefixed range.
    const below = concatBytes(base, bytes(0xfe, 0xff));
    const above = concatBytes(base.subarray(0, -1), bytes(base.at(-1)! + 1));
    await plain.set(below, 'below');
    await plain.set(above, 'above');
    await client.set(bytes(0x00), 'zero');
    await client.set(bytes(0xff, 0xff), 'ff');
    await client.set('text', 'text');
    const listed = await client.readdir('');
    assert.deepEqual(
      listed.kvs.map((kv) => kv.value),
      ['zero', 'text', 'ff'],
    );
    assert.equal(hex(listed.kvs[0]!.keyBytes), '00');
    const ranged: unknown[] = [];
    for await (const kv of client.range('', { pageSize: 1 })) ranged.push(kv.value);
    assert.deepEqual(ranged, ['zero', 'text', 'ff']);
    assert.equal((await client.rmdir('')).deleted, 3);
    assert.equal((await plain.get(below))?.value, 'below');
    assert.equal((await plain.get(above))?.value, 'above');
    await plain.delete(below);
    await plain.delete(above);
  });

  test('lease keys come back as bytes and as text', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.set(bytes(0xff, 0x00), 1, { lease: lease.id });
    const info = await client.timetolive(lease.id, { keys: true });
    assert.deepEqual(info?.keyBytes.map(hex), ['ff00']);
    assert.equal(info?.keys.length, 1);
    await client.revoke(lease.id);
  });

  test('empty keys and keys of other types are refused', async () => {
    await using client = connect();
    for (const key of ['', new Uint8Array(0)]) {
      await assert.rejects(client.get(key), InvalidArgumentError);
      await assert.rejects(client.set(key, 1), InvalidArgumentError);
      await assert.rejects(client.setnx(key, 1), InvalidArgumentError);
      await assert.rejects(client.setx(key, 1), InvalidArgumentError);
      await assert.rejects(client.delete(key), InvalidArgumentError);
      await assert.rejects(client.txn().success(Op.put(key, 1)).commit(), InvalidArgumentError);
      await assert.rejects(
        client
          .txn()
          .if(Compare.version(key, '=', 0))
          .commit(),
        InvalidArgumentError,
      );
    }
    for (const key of [1, null, undefined, {}, ['a']]) {
      const k = key as unknown as string;
      await assert.rejects(client.get(k), InvalidArgumentError, String(key));
      await assert.rejects(client.set(k, 1), InvalidArgumentError, String(key));
      await assert.rejects(client.readdir(k), InvalidArgumentError, String(key));
    }
  });
});

describe('values', () => {
  test('json round-trips every kind of JSON value', async () => {
    await using client = connect();
    const values = [
      null,
      true,
      false,
      0,
      -1.5,
      1e300,
      '',
      'text with "quotes" and ünïcødé 🎉',
      [],
      [1, [2, [3]]],
      {},
      { nested: { list: [null, { a: 'b' }] } },
    ];
    for (const [i, value] of values.entries()) await client.set(`v${i}`, value);
    for (const [i, value] of values.entries()) {
      assert.deepEqual((await client.get(`v${i}`))?.value, value, JSON.stringify(value));
    }
  });

  test('a stored value that is not JSON throws CodecError only when .value is read', async () => {
    const prefix = uniquePrefix('keys');
    await using raw = new Etcd<string>({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await raw.set('bad', 'not json {');
    await raw.set('good', '"fine"');
    await gateway(etcd.endpoint, 'kv/put', {
      key: b64(`${prefix}binary`),
      value: b64(bytes(0xff, 0xfe)),
    });

    const kv = await client.get('bad');
    assert.ok(kv, 'the read itself succeeds');
    assert.equal(kv.key, 'bad');
    assert.equal(Buffer.from(kv.valueBytes).toString(), 'not json {');
    assert.throws(() => kv.value, CodecError);
    assert.throws(() => kv.value, CodecError, 'and again on every access');

    const listed = await client.readdir('');
    assert.deepEqual(
      listed.kvs.map((p) => p.key),
      ['bad', 'binary', 'good'],
    );
    assert.equal(listed.kvs[2]?.value, 'fine');
    assert.throws(() => listed.kvs[1]?.value, CodecError);

    const prev = await client.delete('bad', { prevKv: true });
    assert.throws(() => prev.prevKv?.value, CodecError);
    const nx = await client.setnx('binary', 1);
    assert.equal(nx.succeeded, false);
    assert.throws(() => nx.existing?.value, CodecError);
  });

  test('a value JSON would change is refused before anything is sent', async () => {
    const prefix = uniquePrefix('keys');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    const leasesBefore = (await client.leases()).length;
    const refused = (err: unknown, where: string) =>
      err instanceof CodecError && err.message.includes(where);
    await assert.rejects(client.set('job', { jobs: [{ at: new Date() }] } as never), (err) =>
      refused(err, 'value.jobs[0].at is a Date'),
    );
    // With a TTL, not even the lease is granted.
    await assert.rejects(client.set('job', { tags: new Set(['a']) } as never, { ttl: 60 }), (err) =>
      refused(err, 'value.tags is a Set'),
    );
    await assert.rejects(
      client
        .txn()
        .success(Op.put('job', { retries: [1, undefined] }))
        .commit(),
      (err) => refused(err, 'value.retries[1] is undefined'),
    );
    assert.equal(await rawGet(etcd.endpoint, `${prefix}job`), undefined);
    assert.equal((await client.leases()).length, leasesBefore);
  });

  test('string and bytes codecs refuse values of other types', async () => {
    await using text = connect<string>({ codec: 'string' });
    await assert.rejects(text.set('k', 1 as unknown as string), CodecError);
    await assert.rejects(text.set('k', Buffer.from('x') as unknown as string), CodecError);
    await using raw = connect<Uint8Array>({ codec: 'bytes' });
    await assert.rejects(raw.set('k', 'x' as unknown as Uint8Array), CodecError);
    await assert.rejects(raw.set('k', [1, 2] as unknown as Uint8Array), CodecError);
    assert.equal(await text.get('k'), undefined);
    assert.equal(await raw.get('k'), undefined);
  });

  test('the codec applies to txn compares and puts', async () => {
    await using client = connect<string>({ codec: 'string' });
    await client.set('k', 'plain');
    const r = await client
      .txn()
      .if(Compare.value('k', '=', 'plain'))
      .success(Op.put('k', 'next', { prevKv: true }))
      .commit();
    assert.equal(r.succeeded, true);
    const [put] = r.results;
    assert.equal(put?.type === 'put' && put.prevKv?.value, 'plain');
    assert.equal((await client.get('k'))?.value, 'next');
  });

  test('an empty value is stored as zero bytes with the string and bytes codecs', async () => {
    await using text = connect<string>({ codec: 'string' });
    await text.set('k', '');
    const kv = await text.get('k');
    assert.equal(kv?.value, '');
    assert.equal(kv?.valueBytes.length, 0);
    await using raw = connect<Uint8Array>({ codec: 'bytes' });
    await raw.set('k', new Uint8Array(0));
    assert.equal((await raw.get('k'))?.value.length, 0);
  });
});
