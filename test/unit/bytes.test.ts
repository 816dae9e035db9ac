import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prefixEnd } from '@etcdkit/client';

const bytes = (...b: number[]) => Uint8Array.from(b);

test('prefixEnd increments the last byte', () => {
  assert.deepEqual(prefixEnd(Buffer.from('abc')), Buffer.from('abd'));
});

test('prefixEnd carries over trailing 0xFF bytes', () => {
  assert.deepEqual(prefixEnd(bytes(0x61, 0xff, 0xff)), bytes(0x62));
  assert.deepEqual(prefixEnd(bytes(0x01, 0xfe, 0xff)), bytes(0x01, 0xff));
});

test('prefixEnd of only 0xFF bytes (or nothing) is the open end "\\0"', () => {
  assert.deepEqual(prefixEnd(bytes(0xff, 0xff)), bytes(0));
  assert.deepEqual(prefixEnd(bytes()), bytes(0));
});

test('prefixEnd does not modify its input', () => {
  const input = bytes(0x61, 0x62);
  prefixEnd(input);
  assert.deepEqual(input, bytes(0x61, 0x62));
});
