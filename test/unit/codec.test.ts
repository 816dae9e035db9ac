import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesCodec, CodecError, EtcdError, jsonCodec, stringCodec } from '@etcdkit/client';

test('json codec round-trips JSON values', () => {
  for (const value of [null, true, 0, -1.5, 'text', [1, 'a', null], { a: { b: [1, 2] } }]) {
    assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
  }
});

test('json codec refuses values JSON cannot represent', () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const bad: unknown[] = [
    undefined,
    () => 1,
    Symbol('s'),
    10n,
    Number.NaN,
    Infinity,
    { n: -Infinity },
    circular,
  ];
  for (const value of bad) {
    assert.throws(
      () => jsonCodec.encode(value as never),
      (err: unknown) =>
        err instanceof CodecError && err instanceof EtcdError && err.code === 'ETCDKIT_CODEC',
      `expected CodecError for ${String(typeof value)}`,
    );
  }
});

test('json codec reports stored bytes that are not JSON', () => {
  assert.throws(() => jsonCodec.decode(Buffer.from('not json')), CodecError);
});

test('string codec stores UTF-8 and refuses other types', () => {
  assert.deepEqual(stringCodec.encode('zß水'), Buffer.from('zß水', 'utf8'));
  assert.equal(stringCodec.decode(Buffer.from('zß水', 'utf8')), 'zß水');
  assert.throws(() => stringCodec.encode(5 as never), CodecError);
});

test('bytes codec passes bytes through and refuses other types', () => {
  const value = Uint8Array.of(0, 255, 1);
  assert.equal(bytesCodec.encode(value), value);
  assert.equal(bytesCodec.decode(value), value);
  assert.throws(() => bytesCodec.encode('text' as never), CodecError);
});
