// The client's constructor options, each checked against a real etcd.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type Codec,
  Compare,
  createClient,
  DEFAULT_ENDPOINT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  Etcd,
  type EtcdOptions,
  InvalidArgumentError,
  Op,
  RequestTooLargeError,
  TooManyOpsError,
} from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { proxy, rawGet, refusedUrl, silentServer } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

describe('endpoints', () => {
  test('one endpoint as a string', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix() });
    await client.set('k', 1);
    assert.equal((await client.get('k'))?.value, 1);
    assert.deepEqual(client.endpoints, [etcd.endpoint]);
  });

  test('endpoints as an array, normalised to their origin', async () => {
    await using client = new Etcd({ endpoints: [`${etcd.endpoint}/`], keyPrefix: uniquePrefix() });
    assert.deepEqual(client.endpoints, [etcd.endpoint]);
    await client.set('k', 'v');
    assert.equal((await client.get('k'))?.value, 'v');
  });

  test('a refused endpoint in the list is passed over', async () => {
    const refused = await refusedUrl();
    await using client = new Etcd({
      endpoints: [refused, etcd.endpoint],
      keyPrefix: uniquePrefix(),
    });
    assert.deepEqual(client.endpoints, [refused, etcd.endpoint]);
    await client.set('k', 'v');
    assert.equal((await client.get('k'))?.value, 'v');
  });

  test('the default endpoint is the seed default', async () => {
    await using client = new Etcd();
    assert.deepEqual(client.endpoints, [DEFAULT_ENDPOINT]);
    assert.equal(DEFAULT_ENDPOINT, 'http://127.0.0.1:2379');
  });

  test('bad endpoints are refused with InvalidArgumentError', () => {
    const bad: Array<string | string[]> = [
      'not a url',
      '127.0.0.1:2379',
      'ftp://127.0.0.1:2379',
      'ws://127.0.0.1:2379',
      'unix:etcd.sock',
      'http://127.0.0.1:2379/v3',
      'http://127.0.0.1:2379/some/path',
      'http://127.0.0.1:2379/?query=1',
      'http://127.0.0.1:2379/#hash',
      [],
      [etcd.endpoint, 'nope'],
    ];
    for (const endpoints of bad) {
      assert.throws(
        () => new Etcd({ endpoints }),
        InvalidArgumentError,
        `endpoints ${JSON.stringify(endpoints)}`,
      );
      assert.throws(() => createClient({ endpoints }), InvalidArgumentError);
    }
  });
});

test('createClient returns an Etcd client', async () => {
  await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix() });
  assert.ok(client instanceof Etcd);
  await client.set('k', { a: 1 });
  assert.deepEqual((await client.get('k'))?.value, { a: 1 });
});

test('unknown client options are refused with InvalidArgumentError', () => {
  for (const name of ['keyprefix', 'endpoint', 'http_host', 'api_prefix', 'ssl_verify', 'x']) {
    const options = { endpoints: etcd.endpoint, [name]: 1 } as unknown as EtcdOptions;
    assert.throws(() => new Etcd(options), InvalidArgumentError, name);
  }
});

test('invalid numeric options are refused', () => {
  const bad: EtcdOptions[] = [
    { ttl: 1.5 },
    { ttl: Number.NaN },
    { timeout: -1 },
    { timeout: 1.5 },
    { maxRequestBytes: 0 },
    { maxRequestBytes: -5 },
    { maxTxnOps: 0 },
    { connections: 0 },
    { connections: 2.5 },
  ];
  for (const options of bad) {
    assert.throws(
      () => new Etcd({ endpoints: etcd.endpoint, ...options }),
      InvalidArgumentError,
      JSON.stringify(options),
    );
  }
});

describe('keyPrefix', () => {
  test('is added on write: the full key is what etcd stores', async () => {
    const prefix = uniquePrefix();
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using plain = new Etcd({ endpoints: etcd.endpoint });
    await client.set('a', 1);
    await client.setnx('b', 2);
    await client.txn().success(Op.put('c', 3)).commit();
    await client.txn([], [{ requestPut: { key: 'd', value: 4 } }]);
    for (const [key, value] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 4],
    ] as const) {
      const full = await plain.get(prefix + key);
      assert.equal(full?.value, value, key);
      assert.equal(full?.key, prefix + key);
      assert.equal(await plain.get(key), undefined, `${key} is not stored without the prefix`);
      assert.ok(await rawGet(etcd.endpoint, prefix + key));
    }
  });

  test('is stripped on read from get, readdir, range, prevKv, txn and timetolive', async () => {
    const prefix = uniquePrefix();
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await client.set('dir/a', 1);
    await client.set('dir/b', 2);
    await client.set('other', 3);

    const got = await client.get('dir/a');
    assert.equal(got?.key, 'dir/a');
    assert.deepEqual(Buffer.from(got!.keyBytes), Buffer.from('dir/a'));

    const dir = await client.readdir('dir/');
    assert.deepEqual(
      dir.kvs.map((kv) => kv.key),
      ['dir/a', 'dir/b'],
    );
    const all = await client.readdir('');
    assert.deepEqual(
      all.kvs.map((kv) => kv.key),
      ['dir/a', 'dir/b', 'other'],
    );

    const ranged: string[] = [];
    for await (const kv of client.range('', { pageSize: 1 })) ranged.push(kv.key);
    assert.deepEqual(ranged, ['dir/a', 'dir/b', 'other']);

    const put = await client.set('dir/a', 10, { prevKv: true });
    assert.equal(put.prevKv?.key, 'dir/a');
    const setx = await client.setx('dir/a', 11, { prevKv: true });
    assert.equal(setx.prevKv?.key, 'dir/a');
    const setnx = await client.setnx('dir/a', 12);
    assert.equal(setnx.existing?.key, 'dir/a');

    const txn = await client
      .txn()
      .success(Op.get('dir/b'), Op.put('other', 4, { prevKv: true }), Op.readdir('dir/'))
      .commit();
    const [range, put2, dir2] = txn.results;
    assert.equal(range?.type === 'range' && range.kvs[0]?.key, 'dir/b');
    assert.equal(put2?.type === 'put' && put2.prevKv?.key, 'other');
    assert.deepEqual(dir2?.type === 'range' && dir2.kvs.map((kv) => kv.key), ['dir/a', 'dir/b']);

    const lease = await client.grant(60);
    await client.set('leased', 1, { lease: lease.id });
    const info = await client.timetolive(lease.id, { keys: true });
    assert.deepEqual(info?.keys, ['leased']);
    assert.deepEqual(
      info?.keyBytes.map((k) => Buffer.from(k).toString()),
      ['leased'],
    );
    await client.revoke(lease.id);

    const deleted = await client.delete('other', { prevKv: true });
    assert.equal(deleted.prevKv?.key, 'other');
    const removed = await client.rmdir('dir/', { prevKv: true });
    assert.deepEqual(
      removed.prevKvs.map((kv) => kv.key),
      ['dir/a', 'dir/b'],
    );
  });

  test('works as bytes too', async () => {
    const text = uniquePrefix();
    const prefix = Uint8Array.from(Buffer.from(text));
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using plain = new Etcd({ endpoints: etcd.endpoint });
    await client.set('k', 'v');
    assert.equal((await plain.get(`${text}k`))?.value, 'v');
    assert.equal((await client.get('k'))?.key, 'k');
  });

  test('readdir and rmdir of "" stay inside the prefix', async () => {
    const prefix = uniquePrefix();
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using plain = new Etcd({ endpoints: etcd.endpoint });
    // A sibling that shares the prefix's text minus its trailing slash.
    const sibling = `${prefix.slice(0, -1)}x`;
    await plain.set(sibling, 'keep');
    await client.set('a', 1);
    await client.set('b', 2);
    assert.equal((await client.readdir('')).count, 2);
    const removed = await client.rmdir('');
    assert.equal(removed.deleted, 2);
    assert.equal((await plain.get(sibling))?.value, 'keep');
    await plain.delete(sibling);
  });
});

describe('ttl', () => {
  test('default ttl attaches a lease of that TTL to set, setnx and setx', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      ttl: 30,
    });
    await client.set('set', 1);
    await client.setnx('setnx', 2);
    await client.set('setx', 0, { ttl: 0 });
    await client.setx('setx', 3);
    const leases = new Set<bigint>();
    for (const key of ['set', 'setnx', 'setx']) {
      const kv = await client.get(key);
      assert.ok(kv, key);
      assert.notEqual(kv.lease, 0n, `${key} has a lease`);
      leases.add(kv.lease);
      const info = await client.timetolive(kv.lease, { keys: true });
      assert.ok(info, `the lease of ${key} exists`);
      assert.equal(info.grantedTtl, 30);
      assert.ok(info.ttl > 0 && info.ttl <= 30);
      assert.deepEqual(info.keys, [key]);
    }
    assert.equal(leases.size, 3, 'each write got its own lease');
    for (const id of leases) await client.revoke(id);
  });

  test('a per-call ttl overrides the default; 0 and -1 mean none', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      ttl: 30,
    });
    await client.set('five', 1, { ttl: 5 });
    const five = await client.get('five');
    assert.equal((await client.timetolive(five!.lease))?.grantedTtl, 5);
    await client.setnx('nx', 1, { ttl: 7 });
    const nx = await client.get('nx');
    assert.equal((await client.timetolive(nx!.lease))?.grantedTtl, 7);
    await client.setx('nx', 2, { ttl: 9 });
    const x = await client.get('nx');
    assert.notEqual(x!.lease, nx!.lease);
    assert.equal((await client.timetolive(x!.lease))?.grantedTtl, 9);

    await client.set('zero', 1, { ttl: 0 });
    assert.equal((await client.get('zero'))?.lease, 0n);
    await client.set('minus', 1, { ttl: -1 });
    assert.equal((await client.get('minus'))?.lease, 0n);
    for (const kv of [five, nx, x]) await client.revoke(kv!.lease).catch(() => undefined);
  });

  test('an explicit lease wins over the default ttl', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      ttl: 30,
    });
    const lease = await client.grant(60);
    await client.set('a', 1, { lease: lease.id });
    await client.setnx('b', 1, { lease: lease.id });
    await client.set('c', 1, { ttl: 0 });
    await client.setx('c', 2, { lease: lease.id });
    for (const key of ['a', 'b', 'c']) assert.equal((await client.get(key))?.lease, lease.id);
    await client.revoke(lease.id);
  });

  test('ttl -1 (the default) attaches no lease', async () => {
    await using byDefault = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix() });
    await using explicit = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      ttl: -1,
    });
    for (const client of [byDefault, explicit]) {
      await client.set('a', 1);
      await client.setnx('b', 1);
      await client.setx('a', 2);
      assert.equal((await client.get('a'))?.lease, 0n);
      assert.equal((await client.get('b'))?.lease, 0n);
    }
  });

  test('a write that does not happen leaves no lease behind', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      ttl: 30,
    });
    await client.set('exists', 1, { ttl: 0 });
    const before = new Set(await client.leases());
    const nx = await client.setnx('exists', 2);
    assert.equal(nx.succeeded, false);
    const x = await client.setx('missing', 2);
    assert.equal(x.succeeded, false);
    await assert.rejects(client.set('missing', undefined, { ignoreValue: true }));
    const afterwards = (await client.leases()).filter((id) => !before.has(id));
    assert.deepEqual(afterwards, [], 'no new lease is left');
  });
});

// The API prefix and the connection count are the gateway's: its HTTP requests are counted here.
describe('apiPrefix', () => {
  test('an explicit "/v3" is used without asking for the version', async () => {
    await using front = await proxy(etcd.endpoint);
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: front.url,
      apiPrefix: '/v3',
      keyPrefix: uniquePrefix(),
    });
    await client.set('k', 1);
    assert.equal((await client.get('k'))?.value, 1);
    assert.equal(front.count('/version'), 0);
    assert.deepEqual(front.paths, ['/v3/kv/put', '/v3/kv/range']);
  });

  test('is detected once from GET /version when absent', async () => {
    await using front = await proxy(etcd.endpoint);
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: front.url,
      keyPrefix: uniquePrefix(),
    });
    await Promise.all([client.set('a', 1), client.set('b', 2)]);
    await client.get('a');
    assert.equal(front.count('/version'), 1);
    assert.equal(front.count('/v3/kv/put'), 2);
    assert.equal(front.count('/v3/kv/range'), 1);
    assert.equal(front.paths[0], '/version');
  });

  test('a malformed value is refused', () => {
    for (const apiPrefix of ['v3', '/v3/', '', '/', '/v3/kv', '/../v3', 'http://x/v3', ' /v3']) {
      assert.throws(
        () => new Etcd({ endpoints: etcd.endpoint, apiPrefix }),
        InvalidArgumentError,
        JSON.stringify(apiPrefix),
      );
    }
  });
});

describe('codec', () => {
  test('json is the default and stores JSON text', async () => {
    const prefix = uniquePrefix();
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await client.set('k', { a: [1, 'two', null, true] });
    const stored = await rawGet(etcd.endpoint, `${prefix}k`);
    assert.equal(
      Buffer.from(String(stored?.value), 'base64').toString(),
      '{"a":[1,"two",null,true]}',
    );
  });

  test('string stores UTF-8 text as is', async () => {
    const prefix = uniquePrefix();
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix, codec: 'string' });
    await client.set('k', 'héllo "x"');
    const kv = await client.get('k');
    assert.equal(kv?.value, 'héllo "x"');
    const stored = await rawGet(etcd.endpoint, `${prefix}k`);
    assert.equal(Buffer.from(String(stored?.value), 'base64').toString(), 'héllo "x"');
  });

  test('bytes stores Uint8Array as is', async () => {
    await using client = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      codec: 'bytes',
    });
    const value = Uint8Array.of(0, 0xff, 0xfe, 0x80, 10);
    await client.set('k', value);
    const kv = await client.get('k');
    assert.ok(kv?.value instanceof Uint8Array);
    assert.deepEqual(Buffer.from(kv.value), Buffer.from(value));
  });

  test('a custom codec encodes every value sent and decodes every value read', async () => {
    // Stores numbers as 8-byte big-endian doubles.
    const float64: Codec<number> = {
      name: 'float64',
      encode(value) {
        const buf = Buffer.alloc(8);
        buf.writeDoubleBE(value);
        return buf;
      },
      decode(b) {
        return Buffer.from(b).readDoubleBE(0);
      },
    };
    const prefix = uniquePrefix();
    await using client = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: float64,
    });
    await client.set('pi', Math.PI);
    const stored = await rawGet(etcd.endpoint, `${prefix}pi`);
    assert.equal(Buffer.from(String(stored?.value), 'base64').readDoubleBE(0), Math.PI);
    assert.equal((await client.get('pi'))?.value, Math.PI);
    assert.equal((await client.set('pi', 2, { prevKv: true })).prevKv?.value, Math.PI);
    assert.equal((await client.setnx('pi', 3)).existing?.value, 2);
    assert.deepEqual(
      (await client.readdir('')).kvs.map((kv) => kv.value),
      [2],
    );
    const r = await client
      .txn()
      .if(Compare.value('pi', '=', 2))
      .success(Op.get('pi'))
      .commit();
    assert.equal(r.succeeded, true);
  });

  test('an unknown codec name or an incomplete codec is refused', () => {
    const bad = [
      'yaml',
      'JSON',
      { name: 'x', encode: () => new Uint8Array() },
      { name: 'x', decode: () => 1 },
      {},
      null,
    ];
    for (const codec of bad) {
      const options = { endpoints: etcd.endpoint, codec } as unknown as EtcdOptions;
      assert.throws(() => new Etcd(options), InvalidArgumentError, JSON.stringify(codec));
    }
  });
});

describe('maxRequestBytes', () => {
  test('defaults to etcd 1.5 MiB', () => {
    assert.equal(DEFAULT_MAX_REQUEST_BYTES, 1.5 * 1024 * 1024);
  });

  test('a lower limit refuses larger keys and values before sending', async () => {
    await using hung = await silentServer();
    await using offline = new Etcd({
      endpoints: hung.url,
      apiPrefix: '/v3',
      maxRequestBytes: 64,
      timeout: 2000,
    });
    await assert.rejects(offline.set('k', 'x'.repeat(100)), RequestTooLargeError);
    await assert.rejects(offline.set('k'.repeat(100), 1), RequestTooLargeError);
    await assert.rejects(
      offline
        .txn()
        .success(Op.put('a', 'x'.repeat(40)), Op.put('b', 'y'.repeat(40)))
        .commit(),
      RequestTooLargeError,
    );
    assert.equal(hung.connections, 0, 'nothing was sent');

    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      maxRequestBytes: 64,
    });
    await client.set('k', 'small');
    assert.equal((await client.get('k'))?.value, 'small');
  });

  test('a higher limit lets etcd be the judge', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      maxRequestBytes: 4 * 1024 * 1024,
      codec: 'string',
    });
    // Over etcd's 1.5 MiB: the client sends it and etcd refuses it.
    await assert.rejects(client.set('k', 'x'.repeat(1_700_000)), RequestTooLargeError);
    assert.equal(await client.get('k'), undefined);
  });

  test('a request over etcd gRPC message limit is RequestTooLargeError too', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      maxRequestBytes: 4 * 1024 * 1024,
      codec: 'string',
    });
    // Over --max-request-bytes plus gRPC overhead (2 MiB in all), etcd's gRPC
    // layer refuses it before etcd itself sees it, with a different message.
    await assert.rejects(client.set('k', 'x'.repeat(2_200_000)), RequestTooLargeError);
    assert.equal(await client.get('k'), undefined);
  });
});

describe('maxTxnOps', () => {
  test('defaults to etcd 128', () => {
    assert.equal(DEFAULT_MAX_TXN_OPS, 128);
  });

  test('a lower limit refuses bigger transactions before sending', async () => {
    await using hung = await silentServer();
    await using offline = new Etcd({
      endpoints: hung.url,
      apiPrefix: '/v3',
      maxTxnOps: 2,
      timeout: 2000,
    });
    await assert.rejects(
      offline.txn().success(Op.put('a', 1), Op.put('b', 2), Op.put('c', 3)).commit(),
      TooManyOpsError,
    );
    assert.equal(hung.connections, 0);

    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      maxTxnOps: 2,
    });
    const r = await client.txn().success(Op.put('a', 1), Op.put('b', 2)).commit();
    assert.equal(r.results.length, 2);
  });

  test('a higher limit lets etcd refuse with TooManyOpsError', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix(),
      maxTxnOps: 200,
    });
    const ops = Array.from({ length: 129 }, (_, i) => Op.put(`k${i}`, i));
    await assert.rejects(
      client
        .txn()
        .success(...ops)
        .commit(),
      TooManyOpsError,
    );
    assert.equal((await client.readdir('', { countOnly: true })).count, 0);
  });
});

test('connections: one connection still serves concurrent calls', async () => {
  await using front = await proxy(etcd.endpoint);
  await using client = new Etcd({
    transport: 'gateway',
    endpoints: front.url,
    apiPrefix: '/v3',
    keyPrefix: uniquePrefix(),
    connections: 1,
  });
  await Promise.all(Array.from({ length: 20 }, (_, i) => client.set(`k${i}`, i)));
  const values = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get(`k${i}`)));
  assert.deepEqual(
    values.map((kv) => kv?.value),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(front.connections, 1);
});

test('version() reports the server and cluster versions', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  const version = await client.version();
  const raw = (await (await fetch(`${etcd.endpoint}/version`)).json()) as Record<string, string>;
  assert.deepEqual(version, { server: raw.etcdserver, cluster: raw.etcdcluster });
  assert.match(version.server, /^3\.\d+\.\d+/);
  assert.match(version.cluster, /^3\.\d+\.\d+/);
});
