// Client cut from one member: the member is healthy, but the network between the client and it
// fails (live connections cut, blackholed, reset, refused). The member is first in the client's
// endpoints, so every stream and call starts there.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, EtcdError } from '@etcdkit/client';
import { uniquePrefix } from '@etcdkit/harness';
import { type ProxiedCluster, startProxiedCluster } from './cluster.js';
import { Scenario } from './scenario.js';
import { ms, readAll } from './workload.js';

const DEADLINE_MS = 1_000;

let pc: ProxiedCluster;
before(async () => {
  pc = await startProxiedCluster({ members: 3 });
});
after(async () => {
  await pc?.close();
});

test('live connections cut: calls, watch and session reconnect', async (t) => {
  const s = await Scenario.begin({
    label: 'cut',
    endpoints: pc.endpointsFrom(0),
    direct: pc.cluster.endpoints,
    timeout: DEADLINE_MS,
    sessionTtl: 4,
  });
  const proxy = pc.proxies[0]!;
  s.fault();
  for (let i = 0; i < 3; i++) {
    proxy.cut();
    await sleep(400);
  }
  s.healed();
  await s.writesRecovered();
  await s.finish(t, 'cut live connections');
});

test('slow link (200 ms each way): calls get slower, nothing is lost', async (t) => {
  const s = await Scenario.begin({
    label: 'delay',
    endpoints: pc.endpointsFrom(0),
    direct: pc.cluster.endpoints,
    timeout: DEADLINE_MS,
    sessionTtl: 4,
  });
  const proxy = pc.proxies[0]!;
  s.fault();
  await proxy.delay(200);
  try {
    await sleep(2_000);
  } finally {
    await proxy.pass();
    s.healed();
  }
  await s.writesRecovered();
  await s.finish(t, 'slow link');
});

test('blackholed member: the client moves on within a deadline and the session holds', async (t) => {
  const s = await Scenario.begin({
    label: 'blackhole',
    endpoints: pc.endpointsFrom(0),
    direct: pc.cluster.endpoints,
    timeout: DEADLINE_MS,
    sessionTtl: 4,
  });
  const proxy = pc.proxies[0]!;
  s.fault();
  await proxy.blackhole();
  try {
    await sleep(3_000);
  } finally {
    await proxy.pass();
    s.healed();
  }
  await s.writesRecovered();
  await s.finish(t, 'blackhole', { renewDuringFault: true });
});

test('refused member: writes go to another member, none is indeterminate', async (t) => {
  const proxy = pc.proxies[0]!;
  // Refused before the client ever connected: a call on a connection closed under it would
  // rightly be in doubt. The API prefix is given, so the first call is a write.
  await proxy.refuse();
  await using client = createClient({
    endpoints: pc.endpointsFrom(0),
    keyPrefix: uniquePrefix('refuse'),
    codec: 'string',
    timeout: DEADLINE_MS,
    apiPrefix: '/v3',
  });
  const start = performance.now();
  const errors: string[] = [];
  let firstAck: number | undefined;
  for (let i = 0; i < 30; i++) {
    try {
      if (i % 2 === 0) {
        const r = await client.setnx(`k/${i}`, String(i));
        assert.ok(r.succeeded, `setnx k/${i} found its key already there`);
      } else {
        await client.set(`k/${i}`, String(i));
      }
      firstAck ??= performance.now() - start;
    } catch (err) {
      errors.push(
        err instanceof EtcdError
          ? `${err.name}${err.indeterminate ? ' (indeterminate)' : ''}: ${err.message}`
          : String(err),
      );
    }
  }
  const reads = await client.readdir('k/');
  await proxy.pass();
  t.diagnostic(
    `refused member: first write acknowledged after ${ms(firstAck)}, ${errors.length} failed`,
  );
  for (const e of errors.slice(0, 3)) t.diagnostic(`  ${e}`);
  assert.deepEqual(errors, [], 'a refused connection proves the write never left: retry it');
  assert.equal(reads.count, 30);
  assert.ok(
    reads.kvs.every((kv) => kv.version === 1),
    'each applied once',
  );
});

test('resetting member: after one failure, writes go elsewhere (passive health)', async (t) => {
  const proxy = pc.proxies[0]!;
  const prefix = uniquePrefix('reset');
  await using client = createClient({
    endpoints: pc.endpointsFrom(0),
    keyPrefix: prefix,
    codec: 'string',
    timeout: DEADLINE_MS,
  });
  await using checker = createClient({
    endpoints: pc.cluster.endpoints,
    keyPrefix: prefix,
    codec: 'string',
  });
  await client.set('warm', 'up');
  await proxy.reset();
  const start = performance.now();
  const outcomes: string[] = [];
  let acked = 0;
  // Writes only: no stream or read that could move the client on by the way.
  for (let i = 0; i < 20 && acked < 5; i++) {
    try {
      await client.set(`k/${i}`, String(i));
      outcomes.push('ok');
      acked++;
    } catch (err) {
      assert.ok(err instanceof EtcdError, String(err));
      assert.ok(err.indeterminate, `a reset connection leaves a write in doubt: ${err.message}`);
      outcomes.push('indeterminate');
    }
  }
  const firstAck = outcomes.indexOf('ok');
  t.diagnostic(
    `resetting member: writes ${outcomes.join(', ')}; first ack after ${ms(performance.now() - start)} total`,
  );
  await proxy.pass();
  const failures = outcomes.filter((o) => o !== 'ok').length;
  assert.ok(acked >= 5, `writes succeed again (${failures} of ${outcomes.length} failed)`);
  assert.ok(firstAck <= 2, `${firstAck} writes failed before one went to a healthy member`);
  // Every acknowledged write is there, once.
  const kvs = await readAll(checker, 'k/');
  for (const [i, o] of outcomes.entries()) {
    const kv = kvs.find((x) => x.key === `k/${i}`);
    if (o === 'ok') assert.equal(kv?.value, String(i));
    if (kv) assert.equal(kv.version, 1);
  }
});
