// Typed errors: one root class, literal names and codes, and which check fires when.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AuthenticationError,
  ClientClosedError,
  CodecError,
  CompactedError,
  Compare,
  DuplicateKeyError,
  Etcd,
  EtcdError,
  type EtcdOptions,
  FutureRevisionError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseExistsError,
  LeaseNotFoundError,
  Op,
  PermissionDeniedError,
  ProtocolError,
  RequestTooLargeError,
  ServerError,
  TimeoutError,
  TooManyOpsError,
  UnavailableError,
} from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  transportUnderTest,
  uniquePrefix,
} from '@etcdkit/harness';
import { compact, noSyncThrow, silentServer, type TestServer } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('errors'), ...options });
}

/** A client whose only endpoint never answers: any request it sends would hang. */
async function offline(options: EtcdOptions = {}): Promise<{ client: Etcd; server: TestServer }> {
  const server = await silentServer();
  const client = new Etcd({ endpoints: server.url, apiPrefix: '/v3', timeout: 5000, ...options });
  return { client, server };
}

describe('error classes', () => {
  const classes: Array<[new (message: string) => EtcdError, string, string]> = [
    [InvalidArgumentError, 'InvalidArgumentError', 'ETCDKIT_INVALID_ARGUMENT'],
    [CodecError, 'CodecError', 'ETCDKIT_CODEC'],
    [RequestTooLargeError, 'RequestTooLargeError', 'ETCDKIT_REQUEST_TOO_LARGE'],
    [TooManyOpsError, 'TooManyOpsError', 'ETCDKIT_TOO_MANY_OPS'],
    [DuplicateKeyError, 'DuplicateKeyError', 'ETCDKIT_DUPLICATE_KEY'],
    [KeyNotFoundError, 'KeyNotFoundError', 'ETCDKIT_KEY_NOT_FOUND'],
    [LeaseNotFoundError, 'LeaseNotFoundError', 'ETCDKIT_LEASE_NOT_FOUND'],
    [LeaseExistsError, 'LeaseExistsError', 'ETCDKIT_LEASE_EXISTS'],
    [CompactedError, 'CompactedError', 'ETCDKIT_COMPACTED'],
    [FutureRevisionError, 'FutureRevisionError', 'ETCDKIT_FUTURE_REVISION'],
    [PermissionDeniedError, 'PermissionDeniedError', 'ETCDKIT_PERMISSION_DENIED'],
    [AuthenticationError, 'AuthenticationError', 'ETCDKIT_UNAUTHENTICATED'],
    [UnavailableError, 'UnavailableError', 'ETCDKIT_UNAVAILABLE'],
    [TimeoutError, 'TimeoutError', 'ETCDKIT_TIMEOUT'],
    [ProtocolError, 'ProtocolError', 'ETCDKIT_PROTOCOL'],
    [ServerError, 'ServerError', 'ETCDKIT_SERVER'],
    [ClientClosedError, 'ClientClosedError', 'ETCDKIT_CLIENT_CLOSED'],
  ];

  test('every class extends EtcdError with a literal name and code', () => {
    const codes = new Set<string>();
    for (const [Class, name, code] of classes) {
      const err = new Class('message');
      assert.ok(err instanceof EtcdError, name);
      assert.ok(err instanceof Error, name);
      assert.equal(err.name, name);
      assert.equal(Class.name, name);
      assert.equal(err.code, code);
      assert.equal(err.message, 'message');
      assert.match(String(err), new RegExp(`^${name}: message`));
      assert.equal(err.indeterminate, false);
      codes.add(err.code);
    }
    assert.equal(codes.size, classes.length, 'codes are distinct');
    const root = new EtcdError('root');
    assert.equal(root.name, 'EtcdError');
    assert.equal(root.code, 'ETCDKIT_ERROR');
  });

  test('cause is chained and indeterminate is carried', () => {
    const cause = new Error('socket hang up');
    const err = new UnavailableError('unreachable', { cause, indeterminate: true, grpcCode: 14 });
    assert.equal(err.cause, cause);
    assert.equal(err.indeterminate, true);
    assert.equal(err.retryable, false, 'a write that may have happened is not retried');
    assert.equal(err.grpcCode, 14);
    assert.equal(new UnavailableError('refused').retryable, true);
    assert.equal(new TimeoutError('late', { indeterminate: true }).retryable, false);
    assert.equal(new TimeoutError('late').retryable, true);
  });

  test('errors from etcd carry their class, code and gRPC code', async () => {
    await using client = connect();
    const err = await client
      .set('missing', undefined, { ignoreValue: true })
      .catch((e: unknown) => e);
    assert.ok(err instanceof KeyNotFoundError);
    assert.equal(err.name, 'KeyNotFoundError');
    assert.equal(err.code, 'ETCDKIT_KEY_NOT_FOUND');
    assert.equal(err.grpcCode, 3);
    assert.equal(err.indeterminate, false);
    assert.match(err.message, /key not found/);
  });
});

describe('checks before sending', () => {
  test('values the json codec cannot represent reject with CodecError', async () => {
    const { client, server } = await offline();
    await using _server = server;
    await using _client = client;
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const bad: unknown[] = [
      undefined,
      () => 1,
      Symbol('s'),
      10n,
      { big: 10n },
      Number.NaN,
      Number.POSITIVE_INFINITY,
      { nested: [Number.NEGATIVE_INFINITY] },
      circular,
    ];
    for (const value of bad) {
      const what = typeof value === 'object' ? 'object' : String(value);
      // What the types refuse, as an untyped caller would pass it.
      const untyped = value as never;
      await assert.rejects(client.set('k', untyped), CodecError, `set ${what}`);
      await assert.rejects(client.setnx('k', untyped), CodecError, `setnx ${what}`);
      await assert.rejects(client.setx('k', untyped), CodecError, `setx ${what}`);
      await assert.rejects(client.txn().success(Op.put('k', value)).commit(), CodecError);
      await assert.rejects(
        client
          .txn()
          .if(Compare.value('k', '=', value))
          .commit(),
        CodecError,
      );
      await assert.rejects(
        client.txn([], [{ requestPut: { key: 'k', value } }]),
        CodecError,
        `raw txn ${what}`,
      );
    }
    assert.equal(server.connections, 0, 'nothing was sent');
  });

  test('a value over maxRequestBytes rejects with RequestTooLargeError', async () => {
    const { client, server } = await offline({ codec: 'string' } as unknown as EtcdOptions);
    await using _server = server;
    await using _client = client;
    const big = 'x'.repeat(1.5 * 1024 * 1024 + 1);
    await assert.rejects(client.set('k', big), RequestTooLargeError);
    await assert.rejects(client.setnx('k', big), RequestTooLargeError);
    await assert.rejects(client.setx('k', big), RequestTooLargeError);
    await assert.rejects(client.txn().success(Op.put('k', big)).commit(), RequestTooLargeError);
    const half = 'y'.repeat(800 * 1024);
    await assert.rejects(
      client.txn().success(Op.put('a', half), Op.put('b', half)).commit(),
      RequestTooLargeError,
      'the limit is for the whole request',
    );
    assert.equal(server.connections, 0, 'nothing was sent');
  });

  test('unknown option names reject with InvalidArgumentError on every method', async () => {
    const { client, server } = await offline();
    await using _server = server;
    await using _client = client;
    const bogus = { bogus: true } as never;
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['version', () => client.version(bogus)],
      ['get', () => client.get('k', bogus)],
      ['get prefix', () => client.get('k', { prefix: true } as never)],
      ['get prev_kv', () => client.get('k', { prev_kv: true } as never)],
      ['set', () => client.set('k', 1, bogus)],
      ['set prev_kv', () => client.set('k', 1, { prev_kv: true } as never)],
      ['setnx', () => client.setnx('k', 1, bogus)],
      ['setnx prevKv', () => client.setnx('k', 1, { prevKv: true } as never)],
      ['setx', () => client.setx('k', 1, bogus)],
      ['delete', () => client.delete('k', bogus)],
      ['readdir', () => client.readdir('k', bogus)],
      ['readdir sort_order', () => client.readdir('k', { sort_order: 1 } as never)],
      ['rmdir', () => client.rmdir('k', bogus)],
      ['range', () => client.range('k', bogus).next()],
      ['txn commit', () => client.txn().commit(bogus)],
      ['raw txn', () => client.txn([], [], [], bogus)],
      ['grant', () => client.grant(5, bogus)],
      ['revoke', () => client.revoke(1n, bogus)],
      ['keepalive', () => client.keepalive(1n, bogus)],
      ['timetolive', () => client.timetolive(1n, bogus)],
      ['leases', () => client.leases(bogus)],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(noSyncThrow(call), InvalidArgumentError, name);
    }
    assert.equal(server.connections, 0, 'nothing was sent');
  });

  test('bad option values reject with InvalidArgumentError', async () => {
    const { client, server } = await offline();
    await using _server = server;
    await using _client = client;
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['revision', () => client.get('k', { revision: 1.5 })],
      ['revision string', () => client.get('k', { revision: '5' } as never)],
      ['limit', () => client.readdir('k', { limit: -1 })],
      ['keysOnly', () => client.readdir('k', { keysOnly: 'yes' } as never)],
      ['prevKv', () => client.delete('k', { prevKv: 1 } as never)],
      ['lease', () => client.set('k', 1, { lease: -1n })],
      ['ttl', () => client.set('k', 1, { ttl: 1.5 })],
      ['timeout', () => client.get('k', { timeout: -1 })],
      ['options', () => client.get('k', 'fast' as never)],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(noSyncThrow(call), InvalidArgumentError, name);
    }
    assert.equal(server.connections, 0, 'nothing was sent');
  });
});

describe('revisions', () => {
  test('a revision in the future rejects with FutureRevisionError', async () => {
    await using client = connect();
    const now = (await client.set('k', 1)).revision;
    const future = now + 1000n;
    await assert.rejects(client.get('k', { revision: future }), FutureRevisionError);
    await assert.rejects(client.readdir('', { revision: future }), FutureRevisionError);
    await assert.rejects(client.range('', { revision: future }).next(), FutureRevisionError);
    await assert.rejects(
      client
        .txn()
        .success(Op.get('k', { revision: future }))
        .commit(),
      FutureRevisionError,
    );
  });

  test('a compacted revision rejects with CompactedError', async () => {
    await using client = connect();
    const old = await client.set('k', 'old');
    const current = await client.set('k', 'new');
    await compact(etcd.endpoint, current.revision);
    const err = await client.get('k', { revision: old.revision }).catch((e: unknown) => e);
    assert.ok(err instanceof CompactedError, String(err));
    assert.equal(err.code, 'ETCDKIT_COMPACTED');
    await assert.rejects(client.readdir('', { revision: old.revision }), CompactedError);
    await assert.rejects(
      client
        .txn()
        .success(Op.get('k', { revision: old.revision }))
        .commit(),
      CompactedError,
    );
    // The compacted revision itself can still be read.
    assert.equal((await client.get('k', { revision: current.revision }))?.value, 'new');
  });
});

describe('abort', () => {
  test('an already aborted signal rejects with its reason, without sending', async () => {
    const { client, server } = await offline();
    await using _server = server;
    await using _client = client;
    const reason = new Error('caller gave up');
    const signal = AbortSignal.abort(reason);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['version', () => client.version({ signal })],
      ['get', () => client.get('k', { signal })],
      ['set', () => client.set('k', 1, { signal })],
      ['setnx', () => client.setnx('k', 1, { signal })],
      ['setx', () => client.setx('k', 1, { signal })],
      ['delete', () => client.delete('k', { signal })],
      ['readdir', () => client.readdir('k', { signal })],
      ['rmdir', () => client.rmdir('k', { signal })],
      ['range', () => client.range('k', { signal }).next()],
      ['txn', () => client.txn().success(Op.put('k', 1)).commit({ signal })],
      ['raw txn', () => client.txn([], [], [], { signal })],
      ['grant', () => client.grant(5, { signal })],
      ['revoke', () => client.revoke(1n, { signal })],
      ['keepalive', () => client.keepalive(1n, { signal })],
      ['timetolive', () => client.timetolive(1n, { signal })],
      ['leases', () => client.leases({ signal })],
    ];
    for (const [name, call] of calls) {
      const err = await noSyncThrow(call).then(
        () => assert.fail(`${name} resolved`),
        (e: unknown) => e,
      );
      assert.equal(err, reason, name);
    }
    assert.equal(server.connections, 0, 'nothing was sent');
  });

  test('aborting a call in flight rejects with the reason', async () => {
    const { client, server } = await offline({ timeout: 0 });
    await using _server = server;
    await using _client = client;
    for (const call of [
      (signal: AbortSignal) => client.get('k', { signal }),
      (signal: AbortSignal) => client.set('k', 1, { signal }),
      (signal: AbortSignal) => client.grant(5, { signal }),
    ]) {
      const controller = new AbortController();
      const pending = call(controller.signal);
      const connections = server.connections;
      // HTTP/1.1 opens a connection per call in flight; HTTP/2 shares its one.
      const shared = transportUnderTest() === 'grpc' && connections > 0;
      await waitFor(() => shared || server.connections > connections);
      const reason = new Error('stop');
      controller.abort(reason);
      await assert.rejects(pending, (err) => err === reason);
    }
  });

  test('a default abort reason is passed through as is', async () => {
    const { client, server } = await offline();
    await using _server = server;
    await using _client = client;
    const controller = new AbortController();
    controller.abort();
    const err = await client.get('k', { signal: controller.signal }).catch((e: unknown) => e);
    assert.equal(err, controller.signal.reason);
    assert.equal((err as Error).name, 'AbortError');
  });
});

describe('closed client', () => {
  test('every call after close() rejects with ClientClosedError', async () => {
    const client = connect();
    await client.set('k', 1);
    await client.close();
    await client.close();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['version', () => client.version()],
      ['get', () => client.get('k')],
      ['set', () => client.set('k', 1)],
      ['setnx', () => client.setnx('k', 1)],
      ['setx', () => client.setx('k', 1)],
      ['delete', () => client.delete('k')],
      ['readdir', () => client.readdir('k')],
      ['rmdir', () => client.rmdir('k')],
      ['range', () => client.range('k').next()],
      ['txn', () => client.txn().success(Op.put('k', 1)).commit()],
      ['raw txn', () => client.txn([], [{ requestPut: { key: 'k', value: 1 } }])],
      ['grant', () => client.grant(5)],
      ['revoke', () => client.revoke(1n)],
      ['keepalive', () => client.keepalive(1n)],
      ['timetolive', () => client.timetolive(1n)],
      ['leases', () => client.leases()],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(noSyncThrow(call), ClientClosedError, name);
    }
  });

  test('await using closes the client', async () => {
    let escaped: Etcd | undefined;
    {
      await using client = connect();
      await client.set('k', 1);
      escaped = client;
    }
    await assert.rejects(escaped.get('k'), ClientClosedError);
  });
});

test('async methods never throw synchronously', async () => {
  await using client = connect();
  await using unprefixed = new Etcd({ endpoints: etcd.endpoint });
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['get empty key', () => client.get('')],
    ['get bad key', () => client.get(42 as never)],
    ['set undefined', () => client.set('k', undefined as never)],
    ['set bad options', () => client.set('k', 1, null as never)],
    ['setnx bad key', () => client.setnx(null as never, 1)],
    ['setx bad ttl', () => client.setx('k', 1, { ttl: Number.NaN })],
    ['delete empty key', () => client.delete('')],
    ['readdir bad sort', () => client.readdir('', { sortOrder: 'sideways' as never })],
    ['rmdir everything', () => unprefixed.rmdir('')],
    ['range bad pageSize', () => client.range('', { pageSize: 0 }).next()],
    [
      'txn too many',
      () =>
        client
          .txn()
          .success(...Array.from({ length: 200 }, (_, i) => Op.put(`k${i}`, i)))
          .commit(),
    ],
    [
      'txn bad compare',
      () =>
        client
          .txn()
          .if(Compare.version('k', '=', Number.NaN))
          .commit(),
    ],
    ['raw txn bad', () => client.txn('compare' as never)],
    ['raw txn bad op', () => client.txn([], [null as never])],
    ['grant bad ttl', () => client.grant(-5)],
    ['grant bad id', () => client.grant(5, 'id' as never)],
    ['revoke bad id', () => client.revoke(undefined as never)],
    ['keepalive bad id', () => client.keepalive(-1n)],
    ['timetolive bad id', () => client.timetolive(0.5 as never)],
    ['leases bad options', () => client.leases(7 as never)],
    ['version bad options', () => client.version('x' as never)],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(noSyncThrow(call), EtcdError, name);
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  await eventually(() => assert.ok(condition()));
}
