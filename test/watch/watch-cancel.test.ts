// Watch against one real member: every way to end a watcher, and a compacted start revision.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, EtcdError, WatchCompactedError, type Watcher } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { compact } from '../client/helpers.js';
import { metric, Recorder } from './support.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(label: string) {
  return createClient({
    endpoints: etcd.endpoint,
    keyPrefix: uniquePrefix(label),
    codec: 'string',
  });
}

/** Watchers etcd holds right now (all streams of this member). */
const watchersOnServer = () => metric(etcd.endpoint, 'etcd_debugging_mvcc_watcher_total');

async function serverWatchersBecome(count: number): Promise<void> {
  await eventually(async () => assert.equal(await watchersOnServer(), count));
}

/**
 * The count a test starts from: etcd drops an earlier test's watchers a moment after its client
 * closed, so a reading taken at once may still include them. This member serves only this file.
 */
async function noWatchersLeft(): Promise<number> {
  await serverWatchersBecome(0);
  return 0;
}

describe('cancel', () => {
  test('cancel(): iteration ends, etcd drops the watch, and it is idempotent', async () => {
    await using client = connect('cancel');
    const baseline = await noWatchersLeft();
    const watcher = await client.watch('k');
    await serverWatchersBecome(baseline + 1);
    let canceled = 0;
    watcher.on('canceled', () => canceled++);
    const it = watcher[Symbol.asyncIterator]();
    const pending = it.next();
    await watcher.cancel();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    assert.equal(watcher.ended, true);
    await watcher.cancel();
    assert.equal(canceled, 1, 'canceled is emitted once');
    await serverWatchersBecome(baseline);
    // Nothing arrives after cancel.
    await client.set('k', 'after');
    assert.deepEqual(await it.next(), { done: true, value: undefined });
  });

  test('an AbortSignal: a pending iteration rejects with its reason', async () => {
    await using client = connect('abort');
    const baseline = await noWatchersLeft();
    const controller = new AbortController();
    const watcher = await client.watch('k', { signal: controller.signal });
    await serverWatchersBecome(baseline + 1);
    let canceled = 0;
    watcher.on('canceled', () => canceled++);
    const pending = watcher[Symbol.asyncIterator]().next();
    const reason = new Error('stop watching');
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    assert.equal(watcher.ended, true);
    assert.equal(canceled, 1);
    await serverWatchersBecome(baseline);
  });

  test('an AbortSignal already aborted: watch() rejects with its reason, nothing is created', async () => {
    await using client = connect('aborted');
    const baseline = await noWatchersLeft();
    const reason = new Error('too late');
    await assert.rejects(
      client.watch('k', { signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    );
    await assert.rejects(
      client.watchdir('k', { signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    );
    assert.equal(await watchersOnServer(), baseline);
    assert.equal(client.socketStats.watch, 0, 'no socket was opened');
  });

  test('await using cancels at the end of the block', async () => {
    await using client = connect('using');
    const baseline = await noWatchersLeft();
    let outer: Watcher<string> | undefined;
    {
      await using watcher = await client.watch('k');
      outer = watcher;
      await serverWatchersBecome(baseline + 1);
    }
    assert.equal(outer.ended, true);
    await serverWatchersBecome(baseline);
  });

  test("the seed's watchcancel(watcher)", async () => {
    await using client = connect('watchcancel');
    const baseline = await noWatchersLeft();
    const watcher = await client.watch('k');
    const pending = watcher[Symbol.asyncIterator]().next();
    await client.watchcancel(watcher);
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(watcher.ended, true);
    await serverWatchersBecome(baseline);
  });

  test('leaving a for-await loop cancels the watcher', async () => {
    await using client = connect('break');
    const baseline = await noWatchersLeft();
    const watcher = await client.watch('k');
    await client.set('k', 'v');
    for await (const batch of watcher) {
      assert.equal(batch.events.length, 1);
      break;
    }
    assert.equal(watcher.ended, true);
    await serverWatchersBecome(baseline);
  });

  test('closing the client ends every watcher', async () => {
    const client = connect('close');
    const baseline = await noWatchersLeft();
    const a = await client.watch('a');
    const b = await client.watchdir('b');
    await serverWatchersBecome(baseline + 2);
    const pending = a[Symbol.asyncIterator]().next();
    const rec = new Recorder(b);
    await client.close();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(await rec.ended, undefined);
    assert.equal(a.ended, true);
    assert.equal(b.ended, true);
    await serverWatchersBecome(baseline);
    await assert.rejects(client.watch('c'));
  });

  test('an idle socket is kept a moment for the next watcher, then closed, and reopened when needed', async () => {
    await using client = connect('idle');
    const streams = () => metric(etcd.endpoint, 'etcd_debugging_mvcc_watch_stream_total');
    const before = await streams();
    const w1 = await client.watch('k');
    assert.equal(client.socketStats.watch, 1);
    await w1.cancel();
    // Right after the last watcher leaves, the next one reuses the socket.
    const w2 = await client.watch('k');
    assert.equal(client.socketStats.watch, 1, 'the idle socket was reused');
    await w2.cancel();
    // Without watchers it is closed: etcd sees the stream go.
    await eventually(async () => assert.equal(await streams(), before), { timeout: 10_000 });
    const w3 = await client.watch('k');
    assert.equal(client.socketStats.watch, 2, 'a new socket after the idle one was closed');
    const rec = new Recorder(w3);
    const put = await client.set('k', 'v');
    await rec.waitFor(1);
    assert.deepEqual(rec.lines(), [`${put.revision} put k v`]);
    await w3.cancel();
  });
});

describe('compaction', () => {
  test('a compacted start revision is a WatchCompactedError carrying the compact revision', async () => {
    await using client = connect('compacted');
    const r1 = await client.set('k', '1');
    await client.set('k', '2');
    const r3 = await client.set('k', '3');
    await compact(etcd.endpoint, r3.revision);
    const watcher = await client.watch('k', { startRevision: r1.revision });
    const rec = new Recorder(watcher);
    const err = await rec.ended;
    assert.ok(err instanceof WatchCompactedError, String(err));
    assert.ok(err instanceof EtcdError);
    assert.equal(err.name, 'WatchCompactedError');
    assert.equal(err.code, 'ETCDKIT_WATCH_COMPACTED');
    assert.equal(typeof err.compactRevision, 'bigint');
    assert.equal(err.compactRevision, r3.revision);
    assert.equal(rec.events.length, 0, 'no event: never a silent restart from "now"');
    assert.equal(watcher.ended, true);
  });

  test('the compacted and error events carry the same error', async (t) => {
    await using client = connect('compacted-events');
    const r1 = await client.set('k', '1');
    const r2 = await client.set('k', '2');
    await compact(etcd.endpoint, r2.revision);
    const watcher = await client.watch('k', { startRevision: r1.revision });
    // etcd sends "created" and then "canceled"; listeners attached right after watch()
    // resolves normally see the second. (Events on a disconnect: see watch-resume.)
    const endedEarly = watcher.ended;
    const compacted: WatchCompactedError[] = [];
    const errors: Error[] = [];
    watcher.on('compacted', (e) => compacted.push(e));
    watcher.on('error', (e) => errors.push(e));
    const err = await new Recorder(watcher).ended;
    assert.ok(err instanceof WatchCompactedError);
    if (endedEarly) {
      t.diagnostic('the cancellation arrived before watch() resolved; events not observable');
    } else {
      assert.deepEqual(compacted, [err]);
      assert.deepEqual(errors, [err]);
    }
  });

  test('the compact revision itself is still available', async () => {
    await using client = connect('compact-edge');
    await client.set('k', '1');
    const r2 = await client.set('k', '2');
    await compact(etcd.endpoint, r2.revision);
    await using watcher = await client.watch('k', { startRevision: r2.revision });
    const rec = new Recorder(watcher);
    await rec.waitFor(1);
    assert.deepEqual(rec.lines(), [`${r2.revision} put k 2`]);
  });
});
