// Leases: grant, revoke, keepalive, timetolive and leases, with IDs as exact bigints.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  Etcd,
  type EtcdOptions,
  InvalidArgumentError,
  LeaseExistsError,
  LeaseNotFoundError,
} from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { etcdctlLeases, gateway } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('lease'), ...options });
}

/** A random lease ID above 2^53, so that a trip through Number would change it. */
function bigLeaseId(): bigint {
  const id = randomBytes(8).readBigUInt64BE() & 0x7fff_ffff_ffff_ffffn;
  return id | (1n << 60n) | 1n;
}

const TWO_53 = 2n ** 53n;

describe('grant', () => {
  test('etcd chooses an ID above 2^53 that survives exactly', async () => {
    await using client = connect();
    const lease = await client.grant(30);
    assert.equal(typeof lease.id, 'bigint');
    assert.ok(lease.id > TWO_53, `${lease.id} exceeds 2^53`);
    assert.equal(lease.ttl, 30);
    // What the gateway lists (as decimal text) and what etcdctl lists (as hex).
    const listed = await gateway(etcd.endpoint, 'lease/leases', {});
    const ids = (listed.leases as Array<{ ID: string }>).map((l) => l.ID);
    assert.ok(ids.includes(lease.id.toString()), `${lease.id} in ${ids.join(', ')}`);
    assert.ok(etcdctlLeases(etcd.endpoint).includes(lease.id));
    await client.revoke(lease.id);
  });

  test('a chosen ID is granted as asked, and reusing it is LeaseExistsError', async () => {
    await using client = connect();
    const id = bigLeaseId();
    const lease = await client.grant(30, id);
    assert.equal(lease.id, id);
    assert.ok(etcdctlLeases(etcd.endpoint).includes(id));
    await assert.rejects(
      client.grant(30, id),
      (err: unknown) => err instanceof LeaseExistsError && err.code === 'ETCDKIT_LEASE_EXISTS',
    );
    await client.revoke(id);
    // Once revoked the ID is free again; the options form works the same.
    const again = await client.grant(10, { id });
    assert.equal(again.id, id);
    assert.equal(again.ttl, 10);
    await client.revoke(id);
  });

  test('ID 0 lets etcd choose, as in the seed', async () => {
    await using client = connect();
    const lease = await client.grant(30, 0n);
    assert.notEqual(lease.id, 0n);
    assert.ok((await client.leases()).includes(lease.id));
    await client.revoke(lease.id);
  });

  test('a chosen ID may be a bigint, a safe-integer number or a decimal string, as argument or option', async () => {
    await using client = connect();
    const small = randomBytes(4).readUInt32BE() + 1;
    const big = 0x6000_0000_0000_0000n + BigInt(small);
    const asked: Array<[bigint, () => Promise<{ id: bigint }>]> = [
      [BigInt(small), () => client.grant(30, small)],
      [BigInt(small) + 2n, () => client.grant(30, { id: small + 2 })],
      [BigInt(Number.MAX_SAFE_INTEGER), () => client.grant(30, Number.MAX_SAFE_INTEGER)],
      [big, () => client.grant(30, big.toString())],
      [big + 1n, () => client.grant(30, { id: (big + 1n).toString() })],
    ];
    for (const [id, grant] of asked) {
      assert.equal((await grant()).id, id);
      assert.ok(etcdctlLeases(etcd.endpoint).includes(id));
      await client.revoke(id);
    }
    // 0 as a number means what 0n means: no ID chosen.
    for (const zero of [() => client.grant(30, 0), () => client.grant(30, { id: 0 })]) {
      const lease = await zero();
      assert.ok(lease.id > 0n);
      await client.revoke(lease.id);
    }
  });

  test('an ID that is not an int64 is InvalidArgumentError, as argument or option', async () => {
    await using client = connect();
    const bad = [
      1.5,
      -1,
      2 ** 60,
      Number.NaN,
      '0x12',
      '1.5',
      '-1',
      '',
      ' 12',
      null,
      -1n,
      2n ** 63n,
    ];
    for (const id of bad) {
      for (const grant of [
        () => client.grant(5, id as bigint),
        () => client.grant(5, { id: id as bigint }),
      ]) {
        await assert.rejects(
          grant(),
          (err: unknown) => err instanceof InvalidArgumentError && /lease ID/.test(err.message),
          String(id),
        );
      }
    }
  });

  test('bad TTLs and IDs are refused', async () => {
    await using client = connect();
    for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(client.grant(ttl), InvalidArgumentError, String(ttl));
    }
    for (const id of [-1n, 2n ** 63n]) {
      await assert.rejects(client.grant(5, id), InvalidArgumentError, String(id));
    }
    await assert.rejects(client.grant(5, { id: 1n, bogus: 1 } as never), InvalidArgumentError);
  });
});

describe('revoke', () => {
  test('deletes every key attached to the lease', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.set('a', 1, { lease: lease.id });
    await client.set('b', 2, { lease: lease.id });
    await client.set('free', 3);
    const r = await client.revoke(lease.id);
    assert.equal(typeof r.revision, 'bigint');
    assert.equal(await client.get('a'), undefined);
    assert.equal(await client.get('b'), undefined);
    assert.equal((await client.get('free'))?.value, 3);
    assert.equal(await client.timetolive(lease.id), undefined);
    assert.equal((await client.leases()).includes(lease.id), false);
  });

  test('an unknown or revoked lease is LeaseNotFoundError', async () => {
    await using client = connect();
    await assert.rejects(client.revoke(bigLeaseId()), LeaseNotFoundError);
    const lease = await client.grant(60);
    await client.revoke(lease.id);
    await assert.rejects(client.revoke(lease.id), LeaseNotFoundError);
  });
});

describe('keepalive', () => {
  test('renews the TTL', async () => {
    await using client = connect();
    const lease = await client.grant(10);
    // Wait until the TTL has visibly run down.
    const low = await eventually(
      async () => {
        const info = await client.timetolive(lease.id);
        assert.ok(info && info.ttl <= 8, `ttl ${info?.ttl}`);
        return info.ttl;
      },
      { interval: 200 },
    );
    const renewed = await client.keepalive(lease.id);
    assert.equal(renewed.id, lease.id);
    assert.equal(renewed.ttl, 10);
    const info = await client.timetolive(lease.id);
    assert.ok(info && info.ttl > low, `ttl ${info?.ttl} after renewal, ${low} before`);
    await client.revoke(lease.id);
  });

  test('keeps a chosen big ID exact', async () => {
    await using client = connect();
    const id = bigLeaseId();
    await client.grant(30, id);
    assert.equal((await client.keepalive(id)).id, id);
    await client.revoke(id);
  });

  test('an unknown or revoked lease is LeaseNotFoundError', async () => {
    await using client = connect();
    const unknown = bigLeaseId();
    // Named in hex, as etcd and etcdctl print lease IDs.
    await assert.rejects(
      client.keepalive(unknown),
      (err: unknown) =>
        err instanceof LeaseNotFoundError && err.message.includes(`lease ${unknown.toString(16)} `),
    );
    const lease = await client.grant(60);
    await client.revoke(lease.id);
    await assert.rejects(client.keepalive(lease.id), LeaseNotFoundError);
  });

  test('a lease that expires is gone for keepalive and timetolive', async () => {
    await using client = connect();
    const lease = await client.grant(1);
    await client.set('k', 1, { lease: lease.id });
    await eventually(async () => assert.equal(await client.timetolive(lease.id), undefined));
    assert.equal(await client.get('k'), undefined);
    await assert.rejects(client.keepalive(lease.id), LeaseNotFoundError);
  });
});

describe('timetolive', () => {
  test('reports remaining and granted TTL, and the keys when asked', async () => {
    await using client = connect();
    const lease = await client.grant(45);
    await client.set('b', 1, { lease: lease.id });
    await client.set('a', 1, { lease: lease.id });
    const plain = await client.timetolive(lease.id);
    assert.ok(plain);
    assert.equal(plain.id, lease.id);
    assert.equal(plain.grantedTtl, 45);
    assert.ok(plain.ttl > 0 && plain.ttl <= 45);
    assert.deepEqual(plain.keys, [], 'no keys unless asked for');
    assert.deepEqual(plain.keyBytes, []);
    const withKeys = await client.timetolive(lease.id, { keys: true });
    assert.deepEqual([...(withKeys?.keys ?? [])].sort(), ['a', 'b']);
    const none = await client.timetolive(lease.id, { keys: false });
    assert.deepEqual(none?.keys, []);
    await client.revoke(lease.id);
  });

  test('is undefined for an unknown or revoked lease', async () => {
    await using client = connect();
    assert.equal(await client.timetolive(bigLeaseId()), undefined);
    const lease = await client.grant(60);
    await client.revoke(lease.id);
    assert.equal(await client.timetolive(lease.id, { keys: true }), undefined);
  });
});

describe('leases', () => {
  test('lists granted IDs exactly as etcd does, and drops revoked ones', async () => {
    await using client = connect();
    const chosen = bigLeaseId();
    const granted = [(await client.grant(60)).id, (await client.grant(60, chosen)).id];
    const ids = await client.leases();
    for (const id of granted) {
      assert.equal(typeof id, 'bigint');
      assert.ok(ids.includes(id), `${id} is listed`);
    }
    const listed = await gateway(etcd.endpoint, 'lease/leases', {});
    const raw = (listed.leases as Array<{ ID: string }>).map((l) => BigInt(l.ID));
    assert.deepEqual([...ids].sort(), [...raw].sort());
    assert.deepEqual([...ids].sort(), [...etcdctlLeases(etcd.endpoint)].sort());
    for (const id of granted) await client.revoke(id);
    const afterwards = await client.leases();
    for (const id of granted) assert.equal(afterwards.includes(id), false);
  });
});

test('every lease-ID parameter takes a decimal string as grant does', async () => {
  await using client = connect();
  const { id } = await client.grant(30);
  const text = id.toString();
  await client.set('on-lease', 1, { lease: text });
  assert.equal((await client.keepalive(text)).id, id);
  assert.deepEqual((await client.timetolive(text, { keys: true }))?.keys, ['on-lease']);
  await client.revoke(text);
  assert.equal(await client.timetolive(id), undefined);
});

test('lease IDs that are not integers are refused', async () => {
  await using client = connect();
  const bad = ['0x1', '1e3', 1.5, null, 2 ** 60] as unknown as bigint[];
  for (const id of bad) {
    await assert.rejects(client.revoke(id), InvalidArgumentError, String(id));
    await assert.rejects(client.keepalive(id), InvalidArgumentError, String(id));
    await assert.rejects(client.timetolive(id), InvalidArgumentError, String(id));
    await assert.rejects(client.set('k', 1, { lease: id }), InvalidArgumentError, String(id));
  }
});
