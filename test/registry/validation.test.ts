// Bad input is refused with a typed error before anything is written; stored values
// that break the wire contract are skipped by consumers and reported.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, EtcdError, InvalidArgumentError, type JsonValue } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import {
  type InstanceDescription,
  InvalidRegistrationError,
  MalformedInstanceError,
  type RegisterOptions,
  type RegistrationField,
  Registry,
} from '@etcdkit/registry';
import { countKeys, ids } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const good = { id: 'ok', address: '127.0.0.1', port: 8080 };

const cyclic: Record<string, JsonValue> = { a: 1 };
(cyclic as Record<string, unknown>).self = cyclic;

type Case = [
  label: string,
  service: string,
  instance: InstanceDescription,
  field: RegistrationField,
];

const cases: Case[] = [
  ['service with the separator', 'a/b', good, 'service'],
  ['empty service', '', good, 'service'],
  ['service with a space', 'my service', good, 'service'],
  ['service of 129 characters', 'x'.repeat(129), good, 'service'],
  ['id with the separator', 'api', { ...good, id: 'x/y' }, 'id'],
  ['empty id', 'api', { ...good, id: '' }, 'id'],
  ['id starting with a dot', 'api', { ...good, id: '..' }, 'id'],
  ['address with a space', 'api', { ...good, address: 'not a host' }, 'address'],
  ['address out of IPv4 range', 'api', { ...good, address: '10.0.0.300' }, 'address'],
  ['address with brackets', 'api', { ...good, address: '[::1]' }, 'address'],
  ['address with a port', 'api', { ...good, address: 'host:80' }, 'address'],
  ['empty address', 'api', { ...good, address: '' }, 'address'],
  ['label with a leading hyphen', 'api', { ...good, address: '-bad.example' }, 'address'],
  ['URL as address', 'api', { ...good, address: 'http://x' }, 'address'],
  ['port 0', 'api', { ...good, port: 0 }, 'port'],
  ['port 65536', 'api', { ...good, port: 65_536 }, 'port'],
  ['port 1.5', 'api', { ...good, port: 1.5 }, 'port'],
  ['port as a string', 'api', { ...good, port: '80' as unknown as number }, 'port'],
  ['port NaN', 'api', { ...good, port: Number.NaN }, 'port'],
  ['weight 0', 'api', { ...good, weight: 0 }, 'weight'],
  ['negative weight', 'api', { ...good, weight: -1 }, 'weight'],
  ['infinite weight', 'api', { ...good, weight: Number.POSITIVE_INFINITY }, 'weight'],
  ['empty zone', 'api', { ...good, zone: '' }, 'zone'],
  ['metadata with a function', 'api', meta({ f: (() => 1) as unknown as JsonValue }), 'metadata'],
  ['metadata with a bigint', 'api', meta({ n: 1n as unknown as JsonValue }), 'metadata'],
  ['metadata with undefined', 'api', meta({ u: undefined as unknown as JsonValue }), 'metadata'],
  ['metadata with NaN', 'api', meta({ n: Number.NaN }), 'metadata'],
  ['metadata with a symbol', 'api', meta({ s: Symbol('s') as unknown as JsonValue }), 'metadata'],
  ['metadata with a Date', 'api', meta({ d: new Date() as unknown as JsonValue }), 'metadata'],
  ['metadata with a Map', 'api', meta({ m: new Map() as unknown as JsonValue }), 'metadata'],
  ['metadata with a cycle', 'api', meta(cyclic), 'metadata'],
  ['metadata as an array', 'api', meta([1, 2] as unknown as Record<string, JsonValue>), 'metadata'],
  ['metadata as a string', 'api', meta('x' as unknown as Record<string, JsonValue>), 'metadata'],
];

function meta(metadata: Record<string, JsonValue>): InstanceDescription {
  return { ...good, metadata };
}

describe('bad input', () => {
  test('is refused with InvalidRegistrationError naming the field, and nothing is written', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const registry = new Registry(client, { prefix: uniquePrefix('registry-bad') });
    const leases = (await client.leases()).length;
    for (const [label, service, instance, field] of cases) {
      let promise: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        promise = registry.register(service, instance);
      }, `${label}: no synchronous throw`);
      await assert.rejects(
        promise!,
        (err: unknown) =>
          err instanceof InvalidRegistrationError &&
          err instanceof EtcdError &&
          err.name === 'InvalidRegistrationError' &&
          err.code === 'ETCDKIT_INVALID_REGISTRATION' &&
          err.field === field,
        label,
      );
    }
    assert.equal(await countKeys(etcd.endpoint, `${registry.prefix}/`), 0, 'no key written');
    assert.equal((await client.leases()).length, leases, 'no lease granted');
  });

  test('bad options are InvalidArgumentError, before anything is written', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const prefix = uniquePrefix('registry-opts');
    const registry = new Registry(client, { prefix });
    const leases = (await client.leases()).length;
    const bad: Array<[string, RegisterOptions | Record<string, unknown>]> = [
      ['ttl 0', { ttl: 0 }],
      ['ttl 1.5', { ttl: 1.5 }],
      ['unknown option', { tll: 5 }],
      ['session of the wrong type', { session: 'mine' }],
    ];
    for (const [label, options] of bad) {
      await assert.rejects(
        registry.register('api', good, options as RegisterOptions),
        InvalidArgumentError,
        label,
      );
    }
    await assert.rejects(
      registry.register('api', { ...good, port: 1, extra: true } as InstanceDescription),
      InvalidArgumentError,
    );
    assert.throws(() => new Registry(client, { ttl: -1 }), InvalidArgumentError);
    assert.throws(() => new Registry(client, { prefix: '' }), InvalidArgumentError);
    assert.throws(
      () => new Registry(client, { prefx: '/x' } as Record<string, unknown>),
      InvalidArgumentError,
    );
    await assert.rejects(registry.discover('a/b'), InvalidRegistrationError);
    await assert.rejects(registry.instances(''), InvalidRegistrationError);
    assert.equal(await countKeys(etcd.endpoint, prefix), 0);
    assert.equal((await client.leases()).length, leases);
  });

  test('bad updates are refused and leave the stored value alone', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const registry = new Registry(client, { prefix: uniquePrefix('registry-upd') });
    await using reg = await registry.register('api', good);
    const before = (await client.get(reg.key))?.modRevision;
    await assert.rejects(reg.update({ port: 0 }), InvalidRegistrationError);
    await assert.rejects(reg.update({ status: 'gone' as 'up' }), InvalidRegistrationError);
    await assert.rejects(
      reg.update({ metadata: { f: (() => 1) as unknown as JsonValue } }),
      InvalidRegistrationError,
    );
    await assert.rejects(reg.deregister({ drain: -1 }), InvalidArgumentError);
    assert.equal((await client.get(reg.key))?.modRevision, before);
    assert.ok(reg.active);
  });

  test('good addresses of every kind are accepted', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const registry = new Registry(client, { prefix: uniquePrefix('registry-addr') });
    const addresses = [
      'localhost',
      'api.internal',
      'api.internal.',
      'a-b.c-d.example',
      '10.1.2.3',
      '::1',
      'fe80::1',
      '2001:db8::8a2e:370:7334',
      '::ffff:10.0.0.1',
    ];
    for (const [i, address] of addresses.entries()) {
      await using reg = await registry.register('api', { id: `i${i}`, address, port: 65_535 });
      assert.ok(reg.active, address);
    }
  });
});

describe('values that break the wire contract', () => {
  test('are skipped and reported with an invalid event; good ones around them are kept', async () => {
    await using raw = new Etcd<string>({ endpoints: etcd.endpoint, codec: 'string' });
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const registry = new Registry(client, { prefix: uniquePrefix('registry-wire') });
    const dir = `${registry.prefix}/api/`;
    const value = (id: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        v: 1,
        id,
        address: '127.0.0.1',
        port: 80,
        status: 'up',
        registeredAt: new Date().toISOString(),
        ...extra,
      });
    await raw.set(`${dir}not-json`, '{oops');
    await raw.set(`${dir}v2`, value('v2', { v: 2 }));
    await raw.set(`${dir}wrong-id`, value('other'));
    await raw.set(`${dir}no-port`, value('no-port', { port: undefined }));
    await raw.set(`${dir}bad-status`, value('bad-status', { status: 'sleeping' }));
    await raw.set(`${dir}deep/er`, value('deep/er'));
    // Unknown fields are ignored, missing optional ones take their defaults.
    await raw.set(`${dir}fine`, value('fine', { future: { x: 1 } }));
    await using set = await registry.discover('api');
    assert.deepEqual(ids(set), ['fine']);
    assert.deepEqual(
      set
        .malformed()
        .map((e) => e.key.slice(dir.length))
        .sort(),
      ['bad-status', 'deep/er', 'no-port', 'not-json', 'v2', 'wrong-id'],
    );
    assert.equal(set.get('fine')?.weight, 1);
    assert.deepEqual(set.get('fine')?.metadata, {});
    assert.deepEqual(
      (await registry.instances('api')).map((i) => i.id),
      ['fine'],
    );

    // Changes after the listing: an invalid value is reported, a fixed one is added,
    // and a good instance overwritten with garbage leaves the set.
    const invalid: MalformedInstanceError[] = [];
    set.on('invalid', (err) => invalid.push(err));
    await raw.set(`${dir}late`, 'null');
    await raw.set(`${dir}v2`, value('v2'));
    await raw.set(`${dir}fine`, '[]');
    await eventually(() => assert.deepEqual(ids(set), ['v2']));
    await eventually(() => assert.equal(invalid.length, 2));
    for (const err of invalid) {
      assert.ok(err instanceof MalformedInstanceError);
      assert.equal(err.code, 'ETCDKIT_MALFORMED_INSTANCE');
    }
    assert.deepEqual(invalid.map((e) => e.key).sort(), [`${dir}fine`, `${dir}late`]);
    await raw.delete(`${dir}not-json`);
    await eventually(() => assert.equal(set.malformed().length, 6));
  });
});
