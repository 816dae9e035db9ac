// Watches at the edges: a watch that cannot be created settles with the error a
// read would give; a watch with its own timeout ends by itself and says so; an
// HTTP watch on a stopped member moves on; a closed client refuses watches;
// nothing is left listening on a caller's signal; a mirror notices a store
// that is behind what it listed.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, describe, test } from 'node:test';
import {
  ClientClosedError,
  Etcd,
  type EtcdError,
  RevisionRegressedError,
  TimeoutError,
  UnavailableError,
} from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  transportUnderTest,
  uniquePrefix,
} from '@etcdkit/harness';
import { refusedUrl, silentServer } from '../client/helpers.js';
import { Recorder } from './support.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

const nameOf = (err: unknown) => (err as EtcdError).name;

describe('a watch that cannot be created settles', () => {
  // The gateway's two ways of carrying watches, and gRPC's Watch stream.
  const variants = transportUnderTest() === 'grpc' ? ['grpc'] : (['websocket', 'http'] as const);
  for (const variant of variants) {
    test(`no reachable endpoint (${variant}): watch and watchdir reject as get does`, async () => {
      await using client = new Etcd({
        endpoints: [await refusedUrl(), await refusedUrl()],
        apiPrefix: '/v3',
        timeout: 20_000,
        ...(variant === 'grpc' ? {} : { watch: { transport: variant as 'websocket' | 'http' } }),
      });
      const getError = await client.get('k').catch((err: unknown) => err);
      assert.ok(getError instanceof UnavailableError);
      const watchError = await client.watch('k').catch((err: unknown) => err);
      assert.ok(watchError instanceof UnavailableError, String(watchError));
      assert.equal(nameOf(watchError), nameOf(getError));
      await assert.rejects(client.watchdir('d/'), UnavailableError);
    });
  }

  test('a member that never answers: the watch rejects with TimeoutError at the client timeout', async () => {
    await using hung = await silentServer();
    await using client = new Etcd({ endpoints: hung.url, apiPrefix: '/v3', timeout: 1_500 });
    await assert.rejects(client.get('k'), TimeoutError);
    await assert.rejects(client.watch('k'), TimeoutError);
  });

  test('the watch timeout also bounds the wait for creation', async () => {
    await using hung = await silentServer();
    await using client = new Etcd({ endpoints: hung.url, apiPrefix: '/v3', timeout: 60_000 });
    await assert.rejects(client.watch('k', { timeout: 500 }), TimeoutError);
  });
});

describe('the seed timeout option', () => {
  test('a watch with a timeout ends by itself: iteration finishes, endReason expired, expired emitted', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('expire') });
    // Long enough for creation and one event on a busy machine; the test waits it out.
    const watcher = await client.watchdir('d/', { timeout: 3000 });
    let expired = 0;
    watcher.on('expired', () => expired++);
    const recorder = new Recorder(watcher);
    await client.set('d/a', 1);
    await recorder.waitFor(1);
    assert.equal(await recorder.ended, undefined, 'the iteration finished without an error');
    assert.equal(watcher.endReason, 'expired');
    assert.equal(expired, 1);
    assert.equal(recorder.events.length, 1);
  });

  test('cancel and abort are told apart from expiry', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('reason') });
    const cancelled = await client.watch('k', { timeout: 60_000 });
    await cancelled.cancel();
    assert.equal(cancelled.endReason, 'cancelled');
    const controller = new AbortController();
    const aborted = await client.watch('k', { signal: controller.signal, timeout: 60_000 });
    controller.abort(new Error('stop'));
    assert.equal(aborted.endReason, 'aborted');
  });

  test('a bad timeout is refused before anything is sent', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    for (const timeout of [-1, 1.5, Number.NaN]) {
      await assert.rejects(client.watch('k', { timeout }), { name: 'InvalidArgumentError' });
    }
  });
});

describe('closed clients and callers signals', () => {
  test('watch, watchdir and mirror after close reject with ClientClosedError', async () => {
    const client = new Etcd({ endpoints: etcd.endpoint });
    await client.get('k');
    await client.close();
    await assert.rejects(client.watch('k'), ClientClosedError);
    await assert.rejects(client.watchdir('d/'), ClientClosedError);
    await assert.rejects(client.mirror('d/'), ClientClosedError);
  });

  test('a watcher live at close ends cleanly with endReason closed', async () => {
    const client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('closing') });
    const watcher = await client.watch('k');
    const recorder = new Recorder(watcher);
    await client.close();
    assert.equal(await recorder.ended, undefined);
    assert.equal(watcher.endReason, 'closed');
  });

  test('calls leave no abort listener on a long-lived signal', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('signal') });
    const controller = new AbortController();
    const { signal } = controller;
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 15; i++) {
        const watcher = await client.watch('k', { signal });
        await watcher.cancel();
        await client.get('k', { signal });
        await client.set('k', i, { signal });
        const mirror = await client.mirror('d/', { signal });
        await mirror.close();
      }
      assert.equal(getEventListeners(signal, 'abort').length, 0);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
      [],
    );
  });
});

describe('a stalled HTTP watch stream', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcd({ members: 3 });
  });
  after(() => cluster.close());

  test('a stopped member does not hang an HTTP watcher: it resumes on another member', async () => {
    const leader = await cluster.leader();
    const stopped = cluster.members.find((m) => m !== leader)!;
    const others = cluster.members.filter((m) => m !== stopped).map((m) => m.clientUrl);
    const keyPrefix = uniquePrefix('http-stall');
    await using client = new Etcd({
      transport: 'gateway',
      endpoints: [stopped.clientUrl, ...others],
      keyPrefix,
      watch: { transport: 'http', progressInterval: 300, progressTimeout: 500 },
    });
    await using writer = new Etcd({ endpoints: leader.clientUrl, keyPrefix });
    const watcher = await client.watch('k');
    const disconnected: Error[] = [];
    watcher.on('disconnected', (err) => disconnected.push(err));
    const recorder = new Recorder(watcher);
    await writer.set('k', 'before');
    await recorder.waitFor(1);
    stopped.pause();
    try {
      await writer.set('k', 'during');
      // Without stall detection the stream to the stopped member stays open and silent.
      await recorder.waitFor(2, 20_000);
      assert.deepEqual(
        recorder.events.map((e) => e.kv.value),
        ['before', 'during'],
      );
      assert.ok(disconnected.some((err) => err.message.includes('stalled')));
    } finally {
      stopped.resume();
    }
  });
});

describe('a mirror checks its first watch against what it listed', () => {
  // The proxy sends the listing and the watch to different stores only when
  // they travel on different connections, as on the gateway; gRPC shares one.
  const sharedConnection =
    transportUnderTest() === 'grpc' && 'gRPC lists and watches on one connection';
  test('a store behind the listed revision ends the mirror with RevisionRegressedError', {
    skip: sharedConnection,
  }, async () => {
    await using older = await startEtcd();
    const keyPrefix = uniquePrefix('regress');
    await using writer = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    for (let i = 0; i < 20; i++) await writer.set(`d/${i % 3}`, i);
    await using proxy = await startProxy(etcd.endpoint);
    await using client = new Etcd({ endpoints: proxy.url, keyPrefix });
    await client.get('d/0'); // the pooled connection stays with the first cluster
    proxy.retarget(older.endpoint); // the watch socket, opened later, reaches a fresh store
    const mirror = await client.mirror('d/');
    const errors: Error[] = [];
    mirror.on('error', (err) => errors.push(err));
    await eventually(() => assert.equal(errors.length, 1));
    assert.ok(errors[0] instanceof RevisionRegressedError, String(errors[0]));
  });
});
