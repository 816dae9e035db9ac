import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as client from '@etcdkit/client';

const classes = Object.entries(client).filter(
  ([name, value]) => typeof value === 'function' && name.endsWith('Error'),
) as Array<[string, new (message: string, options?: client.EtcdErrorOptions) => client.EtcdError]>;

test('every exported error class extends EtcdError with a literal name and code', () => {
  assert.ok(classes.length >= 15, `found ${classes.length} error classes`);
  const codes = new Set<string>();
  for (const [exported, Class] of classes) {
    // WatchCompactedError also carries the compact revision.
    const err =
      Class === (client.WatchCompactedError as unknown)
        ? new client.WatchCompactedError('message', 5n, { cause: new Error('inner') })
        : new Class('message', { cause: new Error('inner') });
    assert.ok(err instanceof client.EtcdError, exported);
    assert.ok(err instanceof Error, exported);
    assert.equal(err.name, exported);
    assert.match(err.code, /^ETCDKIT_[A-Z_]+$/);
    assert.ok(!codes.has(err.code), `code ${err.code} is used twice`);
    codes.add(err.code);
    assert.equal((err.cause as Error).message, 'inner');
  }
});

test('timeouts and unavailability are retryable unless the write is indeterminate', () => {
  assert.equal(new client.TimeoutError('t').retryable, true);
  assert.equal(new client.TimeoutError('t', { indeterminate: true }).retryable, false);
  assert.equal(new client.UnavailableError('u').retryable, true);
  assert.equal(new client.UnavailableError('u', { indeterminate: true }).retryable, false);
  assert.equal(new client.InvalidArgumentError('i').retryable, false);
});
