// The HTTP fallback (`watch: { transport: 'http' }`): one streaming POST /v3/watch per watcher,
// newline-delimited JSON, against real etcd.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, type Etcd, WatchCompactedError, type Watcher } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { compact } from '../client/helpers.js';
import { assertSameEvents, history, metric, Recorder, since, Writer } from './support.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(prefix: string, connections?: number): Etcd<string> {
  return createClient({
    // HTTP watches are the gateway's fallback for auth.
    transport: 'gateway',
    endpoints: etcd.endpoint,
    keyPrefix: prefix,
    codec: 'string',
    timeout: 3_000,
    watch: { transport: 'http' },
    ...(connections === undefined ? {} : { connections }),
  });
}

/** Fails when `promise` has not settled after 10 s (a liveness bound, not a timing check). */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within 10 s`)), 10_000);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Watch streams the member holds open right now. */
const streamsOnServer = () => metric(etcd.endpoint, 'etcd_debugging_mvcc_watch_stream_total');

async function streamsBecome(count: number): Promise<void> {
  await eventually(async () => assert.equal(await streamsOnServer(), count));
}

/**
 * The count a test starts from: etcd closes an earlier test's streams a moment after its client
 * did, so a reading taken at once may still include them. This member serves only this file.
 */
async function noStreamsLeft(): Promise<number> {
  await streamsBecome(0);
  return 0;
}

describe('http transport', () => {
  test('events of watch and watchdir with options, one request per watcher', async () => {
    const prefix = uniquePrefix('http');
    await using client = connect(prefix);
    const baseline = await noStreamsLeft();
    await client.set('k', 'old');
    await using one = await client.watch('k', { prevKv: true });
    await using dir = await client.watchdir('d/', { filters: ['noDelete'] });
    await using all = await client.watchdir('');
    await streamsBecome(baseline + 3);
    const oneRec = new Recorder(one);
    const dirRec = new Recorder(dir);
    const allRec = new Recorder(all);
    const p1 = await client.set('k', 'new');
    const p2 = await client.set('d/x', '1');
    const d1 = await client.delete('d/x');
    const d2 = await client.delete('k');
    await allRec.waitFor(4);
    await oneRec.waitFor(2);
    await dirRec.waitFor(1);
    assert.deepEqual(allRec.lines(), [
      `${p1.revision} put k new`,
      `${p2.revision} put d/x 1`,
      `${d1.revision} delete d/x `,
      `${d2.revision} delete k `,
    ]);
    assert.deepEqual(oneRec.lines(), [`${p1.revision} put k new`, `${d2.revision} delete k `]);
    assert.equal(oneRec.events[0]!.prevKv?.value, 'old');
    assert.equal(oneRec.events[1]!.prevKv?.value, 'new');
    assert.deepEqual(dirRec.lines(), [`${p2.revision} put d/x 1`]);
    assert.equal(typeof allRec.batches[0]!.revision, 'bigint');
  });

  test('startRevision replays history; a compacted one is a WatchCompactedError', async () => {
    const prefix = uniquePrefix('http-start');
    await using client = connect(prefix);
    const r1 = await client.set('k', '1');
    const r2 = await client.set('k', '2');
    await using replay = await client.watch('k', { startRevision: r1.revision });
    const rec = new Recorder(replay);
    await rec.waitFor(2);
    assert.deepEqual(rec.lines(), [`${r1.revision} put k 1`, `${r2.revision} put k 2`]);
    await compact(etcd.endpoint, r2.revision);
    const compacted = await client.watch('k', { startRevision: r1.revision });
    const err = await new Recorder(compacted).ended;
    assert.ok(err instanceof WatchCompactedError, String(err));
    assert.equal(err.compactRevision, r2.revision);
  });

  test('cancel(), an AbortSignal, await using and watchcancel end the request', async () => {
    const prefix = uniquePrefix('http-cancel');
    await using client = connect(prefix);
    const baseline = await noStreamsLeft();

    const a = await client.watch('k');
    await streamsBecome(baseline + 1);
    const pending = a[Symbol.asyncIterator]().next();
    await a.cancel();
    assert.deepEqual(await pending, { done: true, value: undefined });
    await streamsBecome(baseline);

    const controller = new AbortController();
    const b = await client.watch('k', { signal: controller.signal });
    await streamsBecome(baseline + 1);
    const reason = new Error('enough');
    const bPending = b[Symbol.asyncIterator]().next();
    controller.abort(reason);
    await assert.rejects(bPending, (err) => err === reason);
    await streamsBecome(baseline);

    let c: Watcher<string> | undefined;
    {
      await using scoped = await client.watch('k');
      c = scoped;
      await streamsBecome(baseline + 1);
    }
    assert.equal(c.ended, true);
    await streamsBecome(baseline);

    const d = await client.watch('k');
    await streamsBecome(baseline + 1);
    await client.watchcancel(d);
    assert.equal(d.ended, true);
    await streamsBecome(baseline);
  });

  test('a member restart: the watch resumes after the last delivered revision, without loss', async (t) => {
    const prefix = uniquePrefix('http-restart');
    await using watching = connect(prefix);
    await using writing = connect(prefix);
    const watcher = await watching.watchdir('');
    const from = watcher.nextRevision;
    const rec = new Recorder(watcher);
    const resumedAt: number[] = [];
    let disconnects = 0;
    watcher.on('disconnected', () => disconnects++);
    watcher.on('resumed', () => resumedAt.push(performance.now()));
    const writer = new Writer(writing);
    await rec.waitFor(50);
    const killed = performance.now();
    await etcd.members[0]!.restart();
    const healthy = since(killed);
    await eventually(() => assert.ok(resumedAt.length >= 1, 'resumed'), { timeout: 30_000 });
    await writer.advance(50);
    await writer.stop();
    const last = await writing.set('zz-last', 'end');
    await eventually(() => assert.equal(rec.events.at(-1)?.kv.modRevision, last.revision), {
      timeout: 30_000,
    });
    const expected = await history(etcd.endpoint, prefix, from, last.revision, prefix);
    assertSameEvents(rec.lines(), expected);
    assert.ok(disconnects >= 1);
    t.diagnostic(
      `http watch: member healthy after ${healthy} ms, watch resumed ${Math.round(resumedAt[0]! - killed)} ms ` +
        `after the kill; ${expected.length} events checked`,
    );
    await watcher.cancel();
  });

  test('HTTP watchers do not take the connections that calls need', async () => {
    const prefix = uniquePrefix('http-pool');
    await using client = connect(prefix, 2);
    const watchers: Watcher<string>[] = [];
    try {
      for (const key of ['a', 'b', 'c'])
        watchers.push(await within(client.watch(key), `watch ${key}`));
      const put = await client.set('a', 'v');
      assert.ok(put.revision > 0n);
      assert.equal((await client.get('a'))?.value, 'v');
    } finally {
      for (const w of watchers) await w.cancel();
    }
  });
});
