// Watch at scale against real etcd: 100,000 events through one watchdir, checked against
// etcd's history and against what was written; 1,000 watchers sharing one socket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, type Etcd, Op, type Watcher } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { assertSameEvents, history, labelledMetric, metric, Recorder, since } from './support.js';
import { tcpProxy } from './tcp-proxy.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const pad = (i: number) => String(i).padStart(6, '0');

/**
 * Runs `count` transactions built by `ops(t)`, `parallel` at a time, and
 * returns the expected event lines of each (by revision), in revision order.
 */
async function writeTxns(
  client: Etcd<string>,
  count: number,
  ops: (t: number) => Array<{ op: Op; line: (revision: bigint) => string }>,
  parallel = 4,
): Promise<string[]> {
  const byRevision = new Map<bigint, string[]>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const t = next++;
      const built = ops(t);
      const result = await client
        .txn()
        .success(...built.map((b) => b.op))
        .commit();
      byRevision.set(
        result.revision,
        built.map((b) => b.line(result.revision)),
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return [...byRevision.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .flatMap(([, lines]) => lines);
}

describe('scale', () => {
  test('100,000 events through one watchdir: no gap, no duplicate, in order', async (t) => {
    const prefix = uniquePrefix('100k');
    await using watching = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    await using writing = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    await using watcher = await watching.watchdir('');
    const from = watcher.nextRevision;
    const rec = new Recorder(watcher);
    const started = performance.now();
    const PER_TXN = 100;
    // 50,000 creates, 30,000 updates of the first 30,000 keys, 20,000 deletes of the rest.
    const put = (i: number, value: string) => ({
      op: Op.put(`k${pad(i)}`, value),
      line: (r: bigint) => `${r} put k${pad(i)} ${value}`,
    });
    const del = (i: number) => ({
      op: Op.delete(`k${pad(i)}`),
      line: (r: bigint) => `${r} delete k${pad(i)} `,
    });
    const range = (t: number, base: number) =>
      Array.from({ length: PER_TXN }, (_, j) => base + t * PER_TXN + j);
    const expected = [
      ...(await writeTxns(writing, 500, (t) => range(t, 0).map((i) => put(i, `a${i}`)))),
      ...(await writeTxns(writing, 300, (t) => range(t, 0).map((i) => put(i, `b${i}`)))),
      ...(await writeTxns(writing, 200, (t) => range(t, 30_000).map(del))),
    ];
    const written = since(started);
    t.diagnostic(`written in ${written} ms; ${rec.events.length} events delivered by then`);
    assert.equal(expected.length, 100_000);
    await rec.waitFor(100_000, 120_000);
    const delivered = since(started);
    const last = BigInt(expected.at(-1)!.split(' ')[0]!);
    // What etcd itself replays for the prefix, read without the client.
    const replayed = await history(etcd.endpoint, prefix, from, last, prefix);
    assertSameEvents(replayed, expected, 'etcd history vs writes');
    assertSameEvents(rec.lines(), expected, 'watcher vs writes');
    for (const batch of rec.batches) {
      assert.equal(typeof batch.revision, 'bigint');
      for (let i = 1; i < batch.events.length; i++) {
        assert.ok(batch.events[i - 1]!.kv.modRevision <= batch.events[i]!.kv.modRevision);
      }
    }
    assert.equal(watching.socketStats.watch, 1);
    t.diagnostic(
      `100,000 events in ${rec.batches.length} batches: written in ${written} ms, ` +
        `all delivered after ${delivered} ms (${Math.round(100_000 / (delivered / 1000))} events/s)`,
    );
  });

  test('1,000 watchers on one socket, each receiving exactly its own events', async (t) => {
    const prefix = uniquePrefix('1000');
    const N = 1_000;
    await using watching = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    await using writing = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    const streamsBefore = await labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
      grpc_method: 'Watch',
      grpc_service: 'etcdserverpb.Watch',
    });
    // The previous test's watcher goes a moment after its client closed: count from none.
    await eventually(async () =>
      assert.equal(await metric(etcd.endpoint, 'etcd_debugging_mvcc_watcher_total'), 0),
    );
    const watchersBefore = 0;
    const started = performance.now();
    // Half watch one key each, half watch a one-key directory: both kinds share the socket.
    const watchers: Watcher<string>[] = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        i % 2 === 0 ? watching.watch(`w${pad(i)}`) : watching.watchdir(`w${pad(i)}/`),
      ),
    );
    const created = since(started);
    const recs = watchers.map((w) => new Recorder(w));
    assert.equal(watching.socketStats.watch, 1, 'one socket opened by the client');
    assert.equal(new Set(watchers.map((w) => w.id)).size, N, 'distinct watch IDs');
    assert.equal(
      await labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
        grpc_method: 'Watch',
        grpc_service: 'etcdserverpb.Watch',
      }),
      streamsBefore + 1,
      'one watch stream on the server',
    );
    assert.equal(
      await metric(etcd.endpoint, 'etcd_debugging_mvcc_watcher_total'),
      watchersBefore + N,
    );

    const keyOf = (i: number) => (i % 2 === 0 ? `w${pad(i)}` : `w${pad(i)}/x`);
    // Neighbours that no watcher may see: a longer key, a sibling directory.
    const noise = (i: number) => (i % 2 === 0 ? `w${pad(i)}-not` : `w${pad(i)}x`);
    // 50 keys and 50 neighbours per transaction (etcd allows 128 operations).
    const puts = await Promise.all(
      Array.from({ length: N / 50 }, (_, t) =>
        writing
          .txn()
          .success(
            ...Array.from({ length: 50 }, (_, j) => t * 50 + j).flatMap((i) => [
              Op.put(keyOf(i), `v${i}`),
              Op.put(noise(i), 'noise'),
            ]),
          )
          .commit(),
      ),
    );
    const dels = await Promise.all(
      Array.from({ length: N / 100 }, (_, t) =>
        writing
          .txn()
          .success(...Array.from({ length: 100 }, (_, j) => Op.delete(keyOf(t * 100 + j))))
          .commit(),
      ),
    );
    await eventually(
      () => {
        const short = recs.filter((r) => r.events.length < 2).length;
        assert.equal(short, 0, `${short} watchers still waiting`);
      },
      { timeout: 60_000, interval: 50 },
    );
    const delivered = since(started);
    for (let i = 0; i < N; i++) {
      assert.deepEqual(
        recs[i]!.lines(),
        [
          `${puts[Math.floor(i / 50)]!.revision} put ${keyOf(i)} v${i}`,
          `${dels[Math.floor(i / 100)]!.revision} delete ${keyOf(i)} `,
        ],
        `watcher ${i}`,
      );
    }
    await Promise.all(watchers.map((w) => w.cancel()));
    for (const rec of recs) assert.equal(await rec.ended, undefined);
    await eventually(async () =>
      assert.equal(
        await metric(etcd.endpoint, 'etcd_debugging_mvcc_watcher_total'),
        watchersBefore,
      ),
    );
    assert.equal(watching.socketStats.watch, 1, 'still one socket in total');
    t.diagnostic(
      `1,000 watchers created in ${created} ms; 2,000 events delivered after ${delivered} ms`,
    );
  });
  test('1,000 watchers on one socket all resume after it is cut, each with its own missed event', async (t) => {
    const prefix = uniquePrefix('1000-cut');
    const N = 1_000;
    await using proxy = await tcpProxy(etcd.endpoint);
    await using watching = createClient({
      endpoints: proxy.url,
      keyPrefix: prefix,
      codec: 'string',
    });
    await using writing = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    const streams = () =>
      labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
        grpc_method: 'Watch',
        grpc_service: 'etcdserverpb.Watch',
      });
    const streamsBefore = await streams();
    const watchers = await Promise.all(
      Array.from({ length: N }, (_, i) => watching.watch(`w${pad(i)}`)),
    );
    let resumed = 0;
    for (const w of watchers) w.on('resumed', () => resumed++);
    const recs = watchers.map((w) => new Recorder(w));
    proxy.refuse(true);
    proxy.cut();
    // Every key is written while the socket is down.
    const puts = await Promise.all(
      Array.from({ length: N / 100 }, (_, t) =>
        writing
          .txn()
          .success(
            ...Array.from({ length: 100 }, (_, j) => Op.put(`w${pad(t * 100 + j)}`, 'missed')),
          )
          .commit(),
      ),
    );
    const restored = performance.now();
    proxy.refuse(false);
    await eventually(
      () => {
        const waiting = recs.filter((r) => r.events.length < 1).length;
        assert.equal(waiting, 0, `${waiting} watchers still waiting`);
      },
      { timeout: 60_000, interval: 50 },
    );
    const caughtUp = since(restored);
    for (let i = 0; i < N; i++) {
      assert.deepEqual(recs[i]!.lines(), [
        `${puts[Math.floor(i / 100)]!.revision} put w${pad(i)} missed`,
      ]);
    }
    assert.equal(resumed, N, 'every watcher resumed');
    assert.equal(await streams(), streamsBefore + 2, 'one stream before the cut, one after');
    await Promise.all(watchers.map((w) => w.cancel()));
    t.diagnostic(
      `1,000 watchers caught up ${caughtUp} ms after the connection was allowed again ` +
        `(${watching.socketStats.watch} sockets opened by the client, refused attempts included)`,
    );
  });
});
