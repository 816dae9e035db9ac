// A response lost after the write was applied: the proxy forwards the request to the member, then
// closes the connection as the answer starts to come back. The client cannot know the outcome: it
// must reject with `indeterminate: true` and must not send the write again on its own.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Etcd, EtcdError } from '@etcdkit/client';
import { uniquePrefix } from '@etcdkit/harness';
import { checkLeases } from './checks.js';
import { type ProxiedCluster, startProxiedCluster } from './cluster.js';
import { Scenario } from './scenario.js';
import { ms } from './workload.js';

let pc: ProxiedCluster;
before(async () => {
  pc = await startProxiedCluster({ members: 3 });
});
after(async () => {
  await pc?.close();
});

/** Requests for `path` that reached any member, through any proxy. */
const sent = (path: string) => pc.proxies.reduce((n, p) => n + p.requests(path), 0);

/** A client under test (member 0 first, through the proxies) and a checker on the members. */
function clients(label: string): { client: Etcd<string>; checker: Etcd<string> } {
  const keyPrefix = uniquePrefix(label);
  return {
    client: createClient({
      endpoints: pc.endpointsFrom(0),
      keyPrefix,
      codec: 'string',
      timeout: 2_000,
      apiPrefix: '/v3',
    }),
    checker: createClient({ endpoints: pc.cluster.endpoints, keyPrefix, codec: 'string' }),
  };
}

/** Runs `call` while member 0's proxy drops the first answer for `path`; returns its rejection. */
async function withLostAnswer(path: string, call: () => Promise<unknown>) {
  const proxy = pc.proxies[0]!;
  const dropped = proxy.dropped;
  const before = sent(path);
  await proxy.dropResponses({ match: path, times: 1 });
  const start = performance.now();
  let error: unknown;
  try {
    await call();
  } catch (err) {
    error = err;
  } finally {
    await proxy.pass();
  }
  return {
    error,
    took: performance.now() - start,
    dropped: proxy.dropped - dropped,
    sent: sent(path) - before,
  };
}

function assertIndeterminate(error: unknown): asserts error is EtcdError {
  assert.ok(error instanceof EtcdError, `rejects with an EtcdError, got ${String(error)}`);
  assert.equal(error.indeterminate, true, `indeterminate: ${error.name}: ${error.message}`);
}

describe('response lost after the write was applied', () => {
  test('put: indeterminate, applied once, not sent again', async (t) => {
    const { client, checker } = clients('lost-put');
    await using _c = client;
    await using _k = checker;
    const r = await withLostAnswer('/v3/kv/put', () => client.set('k', 'v1'));
    t.diagnostic(
      `response lost (put): rejected after ${ms(r.took)}: ${(r.error as Error)?.message}`,
    );
    assert.equal(r.dropped, 1, 'the answer was dropped');
    assertIndeterminate(r.error);
    assert.equal(r.sent, 1, 'the write was sent exactly once');
    const kv = await checker.get('k');
    assert.equal(kv?.value, 'v1', 'the write was applied');
    assert.equal(kv?.version, 1, 'once');
  });

  test('guarded txn (setnx): indeterminate, applied once, the outcome can be read back', async (t) => {
    const { client, checker } = clients('lost-txn');
    await using _c = client;
    await using _k = checker;
    const r = await withLostAnswer('/v3/kv/txn', () => client.setnx('k', 'mine'));
    t.diagnostic(
      `response lost (txn): rejected after ${ms(r.took)}: ${(r.error as Error)?.message}`,
    );
    assert.equal(r.dropped, 1);
    assertIndeterminate(r.error);
    assert.equal(r.sent, 1, 'the txn was sent exactly once');
    const kv = await checker.get('k');
    assert.equal(kv?.value, 'mine');
    assert.equal(kv?.version, 1);
    // Resolving the doubt is the caller's move: the same guarded write now reports the key taken.
    const again = await client.setnx('k', 'mine');
    assert.equal(again.succeeded, false);
    assert.equal(again.existing?.value, 'mine');
  });

  test('delete: indeterminate, the key is gone, deleted once', async () => {
    const { client, checker } = clients('lost-delete');
    await using _c = client;
    await using _k = checker;
    const put = await checker.set('k', 'v');
    const r = await withLostAnswer('/v3/kv/deleterange', () => client.delete('k'));
    assert.equal(r.dropped, 1);
    assertIndeterminate(r.error);
    assert.equal(r.sent, 1);
    assert.equal(await checker.get('k'), undefined);
    // One delete at most: the store moved by exactly one revision for this key's change.
    const after = await checker.readdir('', { countOnly: true });
    assert.equal(after.count, 0);
    assert.ok(after.revision > put.revision);
  });

  test('read: retried on another member, succeeds', async (t) => {
    const { client, checker } = clients('lost-read');
    await using _c = client;
    await using _k = checker;
    await checker.set('k', 'v');
    const before = pc.proxies.slice(1).reduce((n, p) => n + p.requests('/v3/kv/range'), 0);
    let value: string | undefined;
    const r = await withLostAnswer('/v3/kv/range', async () => {
      value = (await client.get('k'))?.value;
    });
    t.diagnostic(`response lost (read): answered after ${ms(r.took)}`);
    assert.equal(r.dropped, 1);
    assert.equal(r.error, undefined, `the read succeeds: ${String(r.error)}`);
    assert.equal(value, 'v');
    const after = pc.proxies.slice(1).reduce((n, p) => n + p.requests('/v3/kv/range'), 0);
    assert.ok(after > before, 'another member answered');
  });

  test('set with a TTL whose put answer is lost leaves no lease behind', async () => {
    const { client, checker } = clients('lost-ttl');
    await using _c = client;
    await using _k = checker;
    const leasesBefore = await checker.leases();
    const r = await withLostAnswer('/v3/kv/put', () => client.set('k', 'v', { ttl: 30 }));
    assertIndeterminate(r.error);
    const kv = await checker.get('k');
    const held = kv && kv.lease !== 0n ? [kv.lease] : [];
    // If the key is there, its lease is what keeps it; any other new lease is a leak.
    assert.deepEqual(await checkLeases(checker, held, leasesBefore), []);
  });

  test('a session whose grant answer is lost leaves no lease behind', async (t) => {
    const { client, checker } = clients('lost-grant');
    await using _c = client;
    await using _k = checker;
    const leasesBefore = await checker.leases();
    let created: Awaited<ReturnType<typeof client.session>> | undefined;
    const r = await withLostAnswer('/v3/lease/grant', async () => {
      created = await client.session({ ttl: 30 });
    });
    t.diagnostic(
      `response lost (grant): ${created ? 'session created' : `rejected: ${(r.error as Error)?.message}`}`,
    );
    if (!created) assertIndeterminate(r.error);
    const held = created ? [created.lease] : [];
    const problems = await checkLeases(checker, held, leasesBefore);
    await created?.close();
    assert.deepEqual(problems, [], 'a lease granted for a call that failed must not outlive it');
  });

  test('writes, watch and session while one member loses kv answers for 2 s', async (t) => {
    const s = await Scenario.begin({
      label: 'lost-load',
      endpoints: pc.endpointsFrom(0),
      direct: pc.cluster.endpoints,
      timeout: 2_000,
      sessionTtl: 5,
    });
    const proxy = pc.proxies[0]!;
    const dropped = proxy.dropped;
    s.fault();
    await proxy.dropResponses({ match: '/v3/kv/' });
    try {
      await sleep(2_000);
    } finally {
      await proxy.pass();
      s.healed();
    }
    t.diagnostic(`response lost (load): ${proxy.dropped - dropped} answers dropped`);
    await s.writesRecovered();
    await s.finish(t, 'response lost (load)');
  });
});
