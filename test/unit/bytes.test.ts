import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prefixEnd } from '@etcdkit/client';

const bytes = (...b: number[]) => Uint8Array.of(...b);
/** Compares contents, whatever the view type (Buffer or Uint8Array). */
const same = (actual: Uint8Array, expected: Uint8Array) =>
  assert.deepEqual([...actual], [...expected]);

test('prefixEnd increments the last byte', () => {
  same(prefixEnd(Buffer.from('abc')), Buffer.from('abd'));
});

test('prefixEnd carries over trailing 0xFF bytes', () => {
  same(prefixEnd(bytes(0x61, 0xff, 0xff)), bytes(0x62));
  same(prefixEnd(bytes(0x01, 0xfe, 0xff)), bytes(0x01, 0xff));
});

test('prefixEnd of only 0xFF bytes (or nothing) is the open end "\\0"', () => {
  same(prefixEnd(bytes(0xff, 0xff)), bytes(0));
  same(prefixEnd(bytes()), bytes(0));
});

test('prefixEnd does not modify its input', () => {
  const input = bytes(0x61, 0x62);
  prefixEnd(input);
  same(input, bytes(0x61, 0x62));
});

test('prefixEnd does not modify a Buffer input either (Buffer.slice shares memory)', () => {
  const input = Buffer.from('s/');
  same(prefixEnd(input), Buffer.from('s0'));
  assert.equal(input.toString(), 's/');
});
