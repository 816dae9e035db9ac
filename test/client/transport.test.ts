// The gateway transport: deadlines, unreachable and misbehaving HTTP endpoints, aborts.
// Fake HTTP/1.1 servers stand in for members, so every client here speaks the gateway;
// the same behaviours on gRPC are tested against real members (test/faults, test/cluster).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Etcd,
  type EtcdError,
  type EtcdOptions,
  InvalidArgumentError,
  Op,
  TimeoutError,
  UnavailableError,
} from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { errorPageServer, proxy, refusedUrl, resettingServer, silentServer } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

/** The error a call rejects with; fails the test if it resolves. */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => assert.fail('the call resolved'),
    (err: unknown) => err,
  );
}

function assertError<C extends abstract new (...args: never[]) => EtcdError>(
  err: unknown,
  Class: C,
  fields: Partial<Pick<EtcdError, 'indeterminate' | 'retryable'>>,
  what: string,
): void {
  assert.ok(err instanceof Class, `${what}: ${String(err)}`);
  for (const [name, value] of Object.entries(fields)) {
    assert.equal((err as unknown as Record<string, unknown>)[name], value, `${what}: ${name}`);
  }
}

describe('timeout', () => {
  test('a hung server: reads time out determinate, writes indeterminate', async () => {
    await using hung = await silentServer();
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: hung.url,
      apiPrefix: '/v3',
      timeout: 150,
    });
    const reads: Array<[string, () => Promise<unknown>]> = [
      ['get', () => client.get('k')],
      ['readdir', () => client.readdir('k')],
      ['range', () => client.range('k').next()],
      ['read-only txn', () => client.txn().success(Op.get('k')).commit()],
      ['timetolive', () => client.timetolive(1n)],
      ['leases', () => client.leases()],
      ['version', () => client.version()],
    ];
    for (const [name, call] of reads) {
      assertError(
        await failure(call()),
        TimeoutError,
        { indeterminate: false, retryable: true },
        name,
      );
    }
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['set', () => client.set('k', 1)],
      ['setnx', () => client.setnx('k', 1)],
      ['setx', () => client.setx('k', 1)],
      ['delete', () => client.delete('k')],
      ['rmdir', () => client.rmdir('k')],
      ['txn', () => client.txn().success(Op.put('k', 1)).commit()],
      ['raw txn', () => client.txn([], [{ requestDeleteRange: { key: 'k' } }])],
      ['grant', () => client.grant(5)],
      ['revoke', () => client.revoke(1n)],
    ];
    for (const [name, call] of writes) {
      const err = await failure(call());
      assertError(err, TimeoutError, { indeterminate: true, retryable: false }, name);
      assert.match((err as Error).message, /may or may not/);
    }
    assert.ok(hung.connections > 0, 'the requests did reach the server');
  });

  test('a per-call timeout overrides the client default', async () => {
    await using hung = await silentServer();
    // No deadline by default: only the per-call one can end these calls.
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: hung.url,
      apiPrefix: '/v3',
      timeout: 0,
    });
    assertError(
      await failure(client.get('k', { timeout: 200 })),
      TimeoutError,
      { indeterminate: false },
      'get',
    );
    assertError(
      await failure(client.set('k', 1, { timeout: 200 })),
      TimeoutError,
      { indeterminate: true },
      'set',
    );
    await assert.rejects(client.get('k', { timeout: -1 }), InvalidArgumentError);
  });

  test('timeout 0 waits until aborted', async () => {
    await using hung = await silentServer();
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: hung.url,
      apiPrefix: '/v3',
      timeout: 60_000,
    });
    const controller = new AbortController();
    let settled = false;
    const pending = client.get('k', { timeout: 0, signal: controller.signal }).finally(() => {
      settled = true;
    });
    await eventually(() => assert.equal(hung.connections, 1));
    assert.equal(settled, false);
    const reason = new Error('enough');
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
  });

  test('a hung server during API prefix detection: the write was never sent', async () => {
    await using hung = await silentServer();
    await using client = new Etcd({ transport: 'gateway', endpoints: hung.url, timeout: 300 });
    assertError(
      await failure(client.set('k', 1)),
      TimeoutError,
      { indeterminate: false },
      'set while detecting',
    );
  });

  test('a call waiting for a free connection ends at its deadline; a write that never got one is not in doubt', async () => {
    const holder = new AbortController();
    await using hung = await silentServer();
    const only: EtcdOptions = {
      transport: 'gateway',
      endpoints: hung.url,
      apiPrefix: '/v3',
      connections: 1,
    };
    await using client = new Etcd({ ...only, timeout: 0 });
    // Takes the only connection, and keeps it: the server never answers.
    const holding = failure(client.get('k', { signal: holder.signal }));
    await eventually(() => assert.equal(hung.connections, 1));
    // Queued behind it, with a long deadline, then a short one registered after it.
    const waiter = new AbortController();
    let waiterSettled = false;
    const waiting = failure(client.get('k', { signal: waiter.signal, timeout: 600_000 })).finally(
      () => {
        waiterSettled = true;
      },
    );
    assertError(
      await failure(client.set('k', 1, { timeout: 100 })),
      TimeoutError,
      { indeterminate: false },
      'a queued set',
    );
    assertError(
      await failure(client.get('k', { timeout: 100 })),
      TimeoutError,
      { indeterminate: false },
      'a queued get',
    );
    assert.equal(waiterSettled, false, 'the call with the later deadline still waits');
    const reason = new Error('enough');
    holder.abort(reason);
    assert.equal(await holding, reason);
    waiter.abort(reason);
    assert.equal(await waiting, reason);
  });

  test('many calls in flight on a few connections all succeed, each within its own deadline', async () => {
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix('transport'),
      connections: 2,
      timeout: 10_000,
    });
    const keys = Array.from({ length: 64 }, (_, n) => `k${n}`);
    await Promise.all(keys.map((key, n) => client.set(key, n, { timeout: 5_000 + n })));
    const values = await Promise.all(keys.map((key) => client.get(key)));
    assert.deepEqual(
      values.map((kv) => kv?.value),
      keys.map((_, n) => n),
    );
  });

  test('a short timeout against the real etcd still succeeds', async () => {
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix('transport'),
      timeout: 5000,
    });
    await client.set('k', 1, { timeout: 5000 });
    assert.equal((await client.get('k', { timeout: 5000 }))?.value, 1);
  });
});

describe('unreachable endpoints', () => {
  test('connection refused is UnavailableError, never indeterminate', async () => {
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: await refusedUrl(),
      apiPrefix: '/v3',
    });
    for (const [name, call] of [
      ['get', () => client.get('k')],
      ['set', () => client.set('k', 1)],
      ['txn', () => client.txn().success(Op.put('k', 1)).commit()],
      ['grant', () => client.grant(5)],
    ] as Array<[string, () => Promise<unknown>]>) {
      assertError(
        await failure(call()),
        UnavailableError,
        { indeterminate: false, retryable: true },
        name,
      );
    }
  });

  test('connection refused while detecting the API prefix is UnavailableError', async () => {
    await using client = new Etcd({ transport: 'gateway', endpoints: await refusedUrl() });
    assertError(
      await failure(client.set('k', 1)),
      UnavailableError,
      { indeterminate: false },
      'set',
    );
  });

  test('every endpoint refused is UnavailableError naming them', async () => {
    const a = await refusedUrl();
    const b = await refusedUrl();
    await using client = new Etcd({ transport: 'gateway', endpoints: [a, b], apiPrefix: '/v3' });
    const err = await failure(client.get('k'));
    assertError(err, UnavailableError, { indeterminate: false }, 'get');
    assert.ok((err as Error).message.includes(a) && (err as Error).message.includes(b));
  });

  test('a connection reset after the request went out: reads determinate, writes indeterminate', async () => {
    await using reset = await resettingServer();
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: reset.url,
      apiPrefix: '/v3',
      timeout: 5000,
    });
    assertError(await failure(client.get('k')), UnavailableError, { indeterminate: false }, 'get');
    assertError(
      await failure(client.set('k', 1)),
      UnavailableError,
      { indeterminate: true, retryable: false },
      'set',
    );
  });

  test('a read moves on to the next endpoint when one resets the connection', async () => {
    await using reset = await resettingServer();
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: [reset.url, etcd.endpoint],
      apiPrefix: '/v3',
      keyPrefix: uniquePrefix('transport'),
    });
    const value = await client.get('k');
    assert.equal(value, undefined);
  });
});

describe('abort', () => {
  test('aborting one call does not fail another that shares API prefix detection', async () => {
    await using front = await proxy(etcd.endpoint);
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: front.url,
      keyPrefix: uniquePrefix('transport'),
    });
    front.hold('/version');
    const controller = new AbortController();
    const reason = new Error('first caller gave up');
    const first = client.get('k', { signal: controller.signal });
    const second = client.set('k', 'second');
    await eventually(() => assert.equal(front.count('/version'), 1));
    controller.abort(reason);
    await assert.rejects(first, (err) => err === reason);
    front.release();
    await second;
    assert.equal((await client.get('k'))?.value, 'second');
  });

  test('a short per-call timeout during detection does not fail another call', async () => {
    await using front = await proxy(etcd.endpoint);
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: front.url,
      keyPrefix: uniquePrefix('transport'),
    });
    front.hold('/version');
    const impatient = client.get('k', { timeout: 100 });
    const patient = client.get('k', { timeout: 10_000 });
    await assert.rejects(impatient, TimeoutError);
    front.release();
    assert.equal(await patient, undefined);
  });
});

test('an endpoint that is not etcd is reported as an EtcdError', async () => {
  // The real etcd, but under a path prefix where there is no gateway.
  await using client = new Etcd({
    transport: 'gateway',
    endpoints: etcd.endpoint,
    apiPrefix: '/v2',
  } as EtcdOptions);
  const err = await failure(client.get('k'));
  assert.ok(err instanceof Error);
  assert.equal((err as EtcdError).code?.startsWith('ETCDKIT_'), true, String(err));
});

describe('a proxy error page in front of a member', () => {
  /** A client whose first endpoint is a page answering `status`, the real etcd second. */
  async function behindPage(status: number) {
    const page = await errorPageServer(status);
    const client = new Etcd({
      transport: 'gateway',
      endpoints: [page.url, etcd.endpoint],
      apiPrefix: '/v3',
      keyPrefix: uniquePrefix('page'),
    });
    const down: string[] = [];
    client.on('endpoint-down', (url) => down.push(url));
    return { page, client, down };
  }

  for (const status of [502, 503, 504]) {
    test(`a read meets a ${status} page: the member is marked down and the read moves on`, async () => {
      const { page, client, down } = await behindPage(status);
      await using _page = page;
      await using _client = client;
      assert.equal(await client.get('k'), undefined);
      assert.equal(page.calls, 1);
      assert.deepEqual(down, [page.url]);
    });
  }

  test('a write meets a 503 page (never forwarded): the member is marked down and the write moves on', async () => {
    const { page, client, down } = await behindPage(503);
    await using _page = page;
    await using _client = client;
    await client.set('k', 'v');
    assert.equal(page.calls, 1);
    assert.deepEqual(down, [page.url]);
    assert.equal((await client.get('k'))?.value, 'v');
  });

  for (const status of [502, 504]) {
    test(`a write meets a ${status} page (maybe forwarded): indeterminate, and the member is marked down`, async () => {
      const { page, client, down } = await behindPage(status);
      await using _page = page;
      await using _client = client;
      assertError(
        await failure(client.set('k', 'v')),
        UnavailableError,
        { indeterminate: true, retryable: false },
        'set',
      );
      assert.equal(page.calls, 1);
      assert.deepEqual(down, [page.url]);
      // The next calls go to the member that is up.
      await client.set('k', 'again');
      assert.equal((await client.get('k'))?.value, 'again');
      assert.equal(page.calls, 1);
    });
  }
});
