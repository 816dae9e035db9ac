// Watch against one real member: watch and watchdir, events and every option of the seed
// (startRevision, progressNotify, filters, prevKv, watchId, fragment).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, EtcdError, InvalidArgumentError, Op } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { eventLine, Recorder, rawEvents, rawWatch } from './support.js';

let etcd: EtcdCluster;
before(async () => {
  // Progress notifications every 300 ms instead of 10 minutes, for `progressNotify`.
  etcd = await startEtcd({ flags: ['--experimental-watch-progress-notify-interval=300ms'] });
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

describe('watch and watchdir', () => {
  test('watch(key): puts and deletes of that key only, decoded, with bigint revisions', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('key') });
    await using watcher = await client.watch('a');
    const rec = new Recorder(watcher);
    const put1 = await client.set('a', { n: 1 });
    await client.set('ab', 'a longer key is not the key');
    await client.set('b', 'another key');
    const put2 = await client.set('a', { n: 2 });
    const del = await client.delete('a');
    await rec.waitFor(3);
    const [e1, e2, e3] = rec.events;
    assert.ok(e1 && e2 && e3);
    assert.equal(e1.type, 'put');
    assert.equal(e1.kv.key, 'a', 'keyPrefix stripped');
    assert.deepEqual(e1.kv.value, { n: 1 }, 'value decoded by the codec');
    assert.equal(typeof e1.kv.modRevision, 'bigint');
    assert.equal(e1.kv.modRevision, put1.revision);
    assert.equal(e1.kv.createRevision, put1.revision);
    assert.equal(e1.kv.version, 1);
    assert.equal(e1.prevKv, undefined, 'no prevKv unless asked');
    assert.equal(e2.type, 'put');
    assert.deepEqual(e2.kv.value, { n: 2 });
    assert.equal(e2.kv.modRevision, put2.revision);
    assert.equal(e2.kv.createRevision, put1.revision);
    assert.equal(e2.kv.version, 2);
    assert.equal(e3.type, 'delete');
    assert.equal(e3.kv.key, 'a');
    assert.equal(e3.kv.modRevision, del.revision);
    assert.equal(e3.kv.valueBytes.length, 0);
    for (const batch of rec.batches) {
      assert.equal(typeof batch.revision, 'bigint');
      assert.ok(batch.revision >= batch.events.at(-1)!.kv.modRevision);
    }
    assert.equal(rec.events.length, 3, 'nothing else');
  });

  test('watchdir(prefix): every key under the prefix, nothing beside it; a txn is one batch', async () => {
    await using client = connect('dir');
    await using watcher = await client.watchdir('dir/');
    const rec = new Recorder(watcher);
    await client.set('dir', 'the prefix without its slash is outside');
    await client.set('dirx/y', 'outside');
    const a = await client.set('dir/a', '1');
    const nested = await client.set('dir/b/c', '2');
    const txn = await client
      .txn()
      .success(Op.put('dir/x', '3'), Op.put('other', 'outside'), Op.delete('dir/a'))
      .commit();
    await rec.waitFor(4);
    assert.deepEqual(rec.lines(), [
      `${a.revision} put dir/a 1`,
      `${nested.revision} put dir/b/c 2`,
      `${txn.revision} put dir/x 3`,
      `${txn.revision} delete dir/a `,
    ]);
    const last = rec.batches.at(-1)!;
    assert.deepEqual(
      last.events.slice(-2).map((e) => e.kv.modRevision),
      [txn.revision, txn.revision],
      'both events of the txn in one batch',
    );
    assert.equal(last.revision, txn.revision);
  });

  test('keys are bytes: a non-UTF-8 key, and a prefix ending in 0xff', async () => {
    await using client = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: uniquePrefix('bytes'),
      codec: 'bytes',
    });
    const key = Uint8Array.of(0x61, 0xff, 0x00, 0x80);
    await using one = await client.watch(key);
    await using dir = await client.watchdir(Uint8Array.of(0x61, 0xff));
    const oneRec = new Recorder(one);
    const dirRec = new Recorder(dir);
    await client.set(key, Uint8Array.of(1, 2, 3));
    await client.set(Uint8Array.of(0x61, 0xff, 0xff, 0x01), Uint8Array.of(4));
    await client.set(Uint8Array.of(0x62), Uint8Array.of(5)); // past the prefix
    await client.set(Uint8Array.of(0x61, 0xfe), Uint8Array.of(6)); // before the prefix
    await oneRec.waitFor(1);
    await dirRec.waitFor(2);
    assert.deepEqual([...oneRec.events[0]!.kv.keyBytes], [...key]);
    assert.deepEqual([...oneRec.events[0]!.kv.value], [1, 2, 3]);
    assert.deepEqual(
      dirRec.events.map((e) => [...e.kv.keyBytes]),
      [
        [0x61, 0xff, 0x00, 0x80],
        [0x61, 0xff, 0xff, 0x01],
      ],
    );
    assert.equal(oneRec.events.length, 1);
  });

  test('watch() resolves once the watch exists: a write right after it is seen', async () => {
    await using client = connect('created');
    const before = (await client.readdir('nothing')).revision;
    await using watcher = await client.watch('k');
    assert.equal(watcher.ended, false);
    assert.equal(typeof watcher.id, 'number');
    assert.ok(watcher.nextRevision > before, 'a "now" watch starts after the current revision');
    const rec = new Recorder(watcher);
    const put = await client.set('k', 'v');
    await rec.waitFor(1);
    assert.equal(rec.events[0]!.kv.modRevision, put.revision);
    assert.equal(watcher.nextRevision, put.revision + 1n, 'the mark moves past each delivery');
  });

  test('events() yields single events in order', async () => {
    await using client = connect('events');
    await using watcher = await client.watchdir('');
    const puts = await client.txn().success(Op.put('a', '1'), Op.put('b', '2')).commit();
    const put3 = await client.set('c', '3');
    const seen: string[] = [];
    for await (const event of watcher.events()) {
      seen.push(eventLine(event));
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, [
      `${puts.revision} put a 1`,
      `${puts.revision} put b 2`,
      `${put3.revision} put c 3`,
    ]);
    assert.equal(watcher.ended, true, 'leaving the loop cancels the watcher');
  });

  test('a watcher is iterated only once', async () => {
    await using client = connect('once');
    await using watcher = await client.watch('k');
    const it = watcher[Symbol.asyncIterator]();
    assert.throws(() => watcher[Symbol.asyncIterator](), EtcdError);
    await it.return?.();
  });
});

describe('options', () => {
  test('startRevision replays the history from that revision, then follows live', async () => {
    await using client = connect('start');
    const r1 = await client.set('k', '1');
    const r2 = await client.set('k', '2');
    const r3 = await client.set('k', '3');
    await using watcher = await client.watch('k', { startRevision: r2.revision });
    const rec = new Recorder(watcher);
    await rec.waitFor(2);
    const r4 = await client.set('k', '4');
    await rec.waitFor(3);
    assert.deepEqual(rec.lines(), [
      `${r2.revision} put k 2`,
      `${r3.revision} put k 3`,
      `${r4.revision} put k 4`,
    ]);
    // A number works as well as a bigint.
    await using fromNumber = await client.watch('k', { startRevision: Number(r1.revision) });
    const numRec = new Recorder(fromNumber);
    await numRec.waitFor(4);
    assert.equal(numRec.events[0]!.kv.modRevision, r1.revision);
  });

  test('a future startRevision waits until the store reaches it', async () => {
    await using client = connect('future');
    const now = await client.set('k', '0');
    await using watcher = await client.watchdir('', { startRevision: now.revision + 3n });
    const rec = new Recorder(watcher);
    await client.set('k', '1');
    await client.set('k', '2');
    const r3 = await client.set('k', '3');
    await rec.waitFor(1);
    assert.deepEqual(rec.lines(), [`${r3.revision} put k 3`]);
  });

  test('bad startRevision values are refused before anything is sent', async () => {
    await using client = connect('badstart');
    for (const startRevision of [0, -1, 1.5, 0n, -5n, Number.NaN]) {
      await assert.rejects(
        client.watch('k', { startRevision }),
        InvalidArgumentError,
        String(startRevision),
      );
    }
  });

  test('prevKv: each event carries the pair before it', async () => {
    await using client = connect('prevkv');
    await client.set('k', 'old');
    await using watcher = await client.watchdir('', { prevKv: true });
    const rec = new Recorder(watcher);
    await client.set('k', 'new');
    await client.delete('k');
    await client.set('fresh', 'first');
    await rec.waitFor(3);
    const [update, del, create] = rec.events;
    assert.equal(update!.prevKv?.value, 'old');
    assert.equal(update!.kv.value, 'new');
    assert.equal(del!.type, 'delete');
    assert.equal(del!.prevKv?.value, 'new', 'a delete carries the deleted value');
    assert.equal(del!.prevKv?.key, 'k');
    assert.equal(create!.prevKv, undefined, 'a new key has no previous pair');
  });

  test('filters: noPut and noDelete, and the seed numbers 0 and 1', async () => {
    await using client = connect('filters');
    const noPut = new Recorder(await client.watchdir('', { filters: ['noPut'] }));
    const noDelete = new Recorder(await client.watchdir('', { filters: ['noDelete'] }));
    const seed0 = new Recorder(await client.watchdir('', { filters: [0] }));
    const seed1 = new Recorder(await client.watchdir('', { filters: [1] }));
    const both = await client.watchdir('', { filters: ['noPut', 'noDelete'] });
    const bothRec = new Recorder(both);
    const all = new Recorder(await client.watchdir(''));
    const p1 = await client.set('a', '1');
    const d1 = await client.delete('a');
    const p2 = await client.set('b', '2');
    const d2 = await client.delete('b');
    await all.waitFor(4);
    await noPut.waitFor(2);
    await noDelete.waitFor(2);
    await seed0.waitFor(2);
    await seed1.waitFor(2);
    const deletes = [`${d1.revision} delete a `, `${d2.revision} delete b `];
    const puts = [`${p1.revision} put a 1`, `${p2.revision} put b 2`];
    assert.deepEqual(noPut.lines(), deletes);
    assert.deepEqual(seed0.lines(), deletes);
    assert.deepEqual(noDelete.lines(), puts);
    assert.deepEqual(seed1.lines(), puts);
    assert.equal(bothRec.events.length, 0);
    await client.close();
    for (const r of [noPut, noDelete, seed0, seed1, bothRec, all])
      assert.equal(await r.ended, undefined);
  });

  test('an unknown filter or option is refused', async () => {
    await using client = connect('badfilter');
    await assert.rejects(
      client.watch('k', { filters: ['noGet' as 'noPut'] }),
      InvalidArgumentError,
    );
    await assert.rejects(client.watch('k', { filters: [2 as 0] }), InvalidArgumentError);
    await assert.rejects(
      client.watch('k', { prevKV: true } as unknown as { prevKv: boolean }),
      InvalidArgumentError,
    );
    await assert.rejects(
      client.watchdir('k', { progressNotify: 'yes' as unknown as boolean }),
      InvalidArgumentError,
    );
  });

  test('progressNotify: progress events move the mark; a watcher without it gets none', async () => {
    await using client = connect('progress');
    await using notified = await client.watch('quiet', { progressNotify: true });
    await using plain = await client.watch('quiet');
    const progress: bigint[] = [];
    let plainProgress = 0;
    notified.on('progress', (revision) => progress.push(revision));
    plain.on('progress', () => plainProgress++);
    // Move the store's revision with writes the watchers do not see.
    const elsewhere = await client.set('elsewhere', 'x');
    await eventually(
      () =>
        assert.ok(
          progress.some((r) => r >= elsewhere.revision),
          `progress: ${progress.join(',')}`,
        ),
      { timeout: 15_000 },
    );
    assert.equal(typeof progress[0], 'bigint');
    assert.ok(
      notified.nextRevision > elsewhere.revision,
      'the mark moved past the notified revision',
    );
    assert.equal(plainProgress, 0);
    // Progress is not an event: nothing was delivered.
    const rec = new Recorder(notified);
    const put = await client.set('quiet', 'now');
    await rec.waitFor(1);
    assert.deepEqual(rec.lines(), [`${put.revision} put quiet now`]);
  });

  test('watchId: a chosen ID is used on the stream; one in use is refused', async () => {
    await using client = connect('watchid');
    await using chosen = await client.watch('k', { watchId: 4242 });
    assert.equal(chosen.id, 4242);
    await assert.rejects(client.watch('k', { watchId: 4242 }), InvalidArgumentError);
    for (const watchId of [0, -1, 1.5]) {
      await assert.rejects(client.watch('k', { watchId }), InvalidArgumentError, String(watchId));
    }
    await using auto = await client.watch('k');
    assert.notEqual(auto.id, 4242);
    const chosenRec = new Recorder(chosen);
    const autoRec = new Recorder(auto);
    const put = await client.set('k', 'v');
    await chosenRec.waitFor(1);
    await autoRec.waitFor(1);
    assert.deepEqual(chosenRec.lines(), [`${put.revision} put k v`]);
    assert.deepEqual(autoRec.lines(), [`${put.revision} put k v`]);
  });

  test('watchId: an ID is free again right after its watcher is cancelled', async () => {
    await using client = connect('watchid-reuse');
    // Another watcher keeps the shared socket open, as in any busy client.
    await using keeper = await client.watch('keeper');
    const first = await client.watch('k', { watchId: 777 });
    await first.cancel();
    // etcd confirms the cancellation of the first with a "canceled" message for ID 777;
    // it must not end the second.
    const second = await client
      .watch('k', { watchId: 777 })
      .catch((err: unknown) => assert.fail(`a watch re-using ID 777 failed: ${String(err)}`));
    const rec = new Recorder(second);
    const put = await client.set('k', 'v');
    await eventually(() => assert.ok(rec.events.length >= 1 || second.ended));
    const ended = await Promise.race([rec.ended, 'still running']);
    assert.equal(second.ended, false, `the second watcher ended: ${String(ended)}`);
    assert.deepEqual(rec.lines(), [`${put.revision} put k v`]);
    await second.cancel();
    assert.equal(keeper.ended, false);
  });

  test('fragment: a revision too large for one message is reassembled into one batch', async (t) => {
    const prefix = uniquePrefix('fragment');
    await using client = createClient({
      endpoints: etcd.endpoint,
      keyPrefix: prefix,
      codec: 'string',
    });
    const big = 'x'.repeat(20_000);
    for (let i = 0; i < 150; i += 50) {
      const ops = Array.from({ length: 50 }, (_, j) =>
        Op.put(`k${String(i + j).padStart(3, '0')}`, big),
      );
      await client
        .txn()
        .success(...ops)
        .commit();
    }
    // Premise, checked on the raw stream: etcd splits this delete's events when asked to.
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const raw = await rawWatch(etcd.endpoint, {
      key: Buffer.from(prefix).toString('base64'),
      range_end: end.toString('base64'),
      prev_kv: true,
      fragment: true,
    });
    await using fragmented = await client.watchdir('', { prevKv: true, fragment: true });
    await using whole = await client.watchdir('', { prevKv: true });
    const rec = new Recorder(fragmented);
    const wholeRec = new Recorder(whole);
    const del = await client.rmdir('');
    assert.equal(del.deleted, 150);
    await raw.waitFor((m) => rawEvents(m).length >= 150);
    raw.close();
    const pieces = raw.messages.filter(
      (m) => ((m.result as { events?: unknown[] }).events ?? []).length > 0,
    );
    t.diagnostic(`etcd sent the 150 delete events in ${pieces.length} messages`);
    assert.ok(pieces.length > 1, 'etcd fragmented the revision');
    assert.ok(pieces.some((m) => (m.result as { fragment?: boolean }).fragment === true));

    await rec.waitFor(150);
    await wholeRec.waitFor(150);
    assert.equal(rec.batches.length, 1, 'the fragments form one batch');
    assert.equal(rec.batches[0]!.revision, del.revision);
    assert.equal(rec.events.length, 150);
    for (const [i, event] of rec.events.entries()) {
      assert.equal(event.type, 'delete');
      assert.equal(event.kv.key, `k${String(i).padStart(3, '0')}`);
      assert.equal(event.kv.modRevision, del.revision);
      assert.equal(event.prevKv?.value, big);
    }
    assert.deepEqual(rec.lines(), wholeRec.lines(), 'same events as an unfragmented watcher');
  });
});
