import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesCodec, CodecError, EtcdError, jsonCodec, stringCodec } from '@etcdkit/client';

test('json codec round-trips JSON values', () => {
  for (const value of [null, true, 0, -1.5, 'text', [1, 'a', null], { a: { b: [1, 2] } }]) {
    assert.deepEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
  }
});

/** The message of the CodecError that encoding `value` throws. */
function refusal(value: unknown): string {
  try {
    jsonCodec.encode(value as never);
  } catch (err) {
    assert.ok(err instanceof CodecError && err instanceof EtcdError, String(err));
    assert.equal(err.code, 'ETCDKIT_CODEC');
    return err.message;
  }
  return assert.fail(`encoded ${String(value)} without complaint`);
}

class Job {
  constructor(readonly name: string) {}
}

test('json codec refuses whatever JSON would not give back equal, naming where it is', () => {
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  const inArray: unknown[] = [1];
  inArray.push({ back: inArray });
  const sparse = [1];
  sparse[2] = 3;
  const cases: Array<[string, unknown, string]> = [
    ['top-level undefined', undefined, 'value is undefined'],
    ['a property that is undefined', { a: 1, b: undefined }, 'value.b is undefined'],
    ['undefined in an array', [1, undefined], 'value[1] is undefined'],
    ['a function', { f: () => 1 }, 'value.f is a function'],
    ['a symbol', [Symbol('s')], 'value[0] is a symbol'],
    ['a bigint', { n: 10n }, 'value.n is a bigint'],
    ['NaN', { x: Number.NaN }, 'value.x is NaN'],
    ['Infinity', Infinity, 'value is Infinity'],
    ['-Infinity', { deep: [{ n: -Infinity }] }, 'value.deep[0].n is -Infinity'],
    ['a Date', { jobs: [{}, {}, { at: new Date(0) }] }, 'value.jobs[2].at is a Date'],
    ['a Map', { m: new Map([[1, 2]]) }, 'value.m is a Map'],
    ['a Set', new Set([1]), 'value is a Set'],
    ['a class instance', { job: new Job('x') }, 'value.job is a Job'],
    ['bytes', { raw: Uint8Array.of(1) }, 'value.raw is a Uint8Array'],
    ['a boxed string', { s: new String('x') }, 'value.s is a String'],
    ['a sparse array', { list: sparse }, 'value.list[1] is a hole in a sparse array'],
    ['a cycle', circular, 'value.self is a cycle'],
    ['a cycle through an array', inArray, 'value[1].back is a cycle'],
    ['an object with toJSON', { t: { toJSON: () => 'x' } }, 'value.t has a toJSON method'],
    ['a symbol key', { o: { [Symbol('k')]: 1 } }, 'value.o has a symbol key'],
    ['a key that is not an identifier', { 'a b': { 'c-d': NaN } }, 'value["a b"]["c-d"] is NaN'],
  ];
  for (const [what, value, expected] of cases) {
    const message = refusal(value);
    assert.ok(message.includes(expected), `${what}: "${message}" should say "${expected}"`);
  }
});

test('json codec accepts shared references, null prototypes and empty containers', () => {
  const shared = { n: 1 };
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: [shared] });
  for (const value of [{ a: shared, b: shared }, bare, [], {}, [[]], { e: {} }, -0]) {
    assert.deepEqual(
      jsonCodec.decode(jsonCodec.encode(value as never)),
      JSON.parse(JSON.stringify(value)),
    );
  }
});

test('json codec encodes exactly what JSON.stringify gives', () => {
  const value = { s: 'zß水', n: [1, 2.5, -3e-7], b: false, z: null, o: { 'k"ey': 'v' } };
  assert.equal(Buffer.from(jsonCodec.encode(value)).toString('utf8'), JSON.stringify(value));
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

test('the string codec keeps a leading byte order mark and replaces invalid UTF-8', () => {
  assert.equal(stringCodec.decode(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61)), '\ufeffa');
  assert.equal(stringCodec.decode(Uint8Array.of(0x61, 0xff, 0x62)), 'a\ufffdb');
  const view = Buffer.from('xxkeyxx').subarray(2, 5);
  assert.equal(stringCodec.decode(new Uint8Array(view.buffer, view.byteOffset, 3)), 'key');
});
