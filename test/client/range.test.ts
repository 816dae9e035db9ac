// range(): a paged iterator that reads one consistent snapshot.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ClientClosedError,
  CompactedError,
  Etcd,
  type EtcdOptions,
  InvalidArgumentError,
  type RangeIteratorOptions,
} from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { compact, proxy, writeMany } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('range'), ...options });
}

const TOTAL = 100_000;
const PAGE = 1000;
const keyOf = (i: number) => `k${String(i).padStart(6, '0')}`;

test('100,000 keys read page by page as one snapshot while they change', async () => {
  const prefix = uniquePrefix('range');
  await using writer = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
  const snapshot = await writeMany(writer, TOTAL, (i) => [keyOf(i), i]);
  assert.equal((await writer.readdir('', { countOnly: true })).count, TOTAL);

  await using front = await proxy(etcd.endpoint);
  await using reader = new Etcd({
    transport: 'gateway',
    endpoints: front.url,
    apiPrefix: '/v3',
    keyPrefix: prefix,
  });

  // Writes made after the snapshot: new values, new keys (before, among and
  // after the old ones), and deletions of keys not read yet.
  const changes = async (round: number, at: number) => {
    await Promise.all([
      writer.set(keyOf(at + 10), -round),
      writer.set(keyOf(at + 30_000), -round),
      writer.set(keyOf(0), -round),
      writer.delete(keyOf(at + 40_000)),
      writer.set(`${keyOf(at + 20_000)}+new`, -round),
      writer.set('a-before-all', -round),
      writer.set('z-after-all', -round),
    ]);
  };

  // Once the first page is in, a background writer keeps changing values and
  // adding keys until the iteration ends.
  let iterating = true;
  let added = 0;
  let background: Promise<void> = Promise.resolve();
  const startBackground = async () => {
    for (let n = 0; iterating; n++) {
      const at = (n * 7919) % TOTAL;
      await writer.set(keyOf(at), -100 - n);
      await writer.set(`${keyOf(at)}+bg${n}`, n);
      added++;
    }
  };

  let count = 0;
  let previous = '';
  try {
    for await (const kv of reader.range('', { pageSize: PAGE })) {
      if (count === 0) {
        assert.equal(front.count('/kv/range'), 1, 'only the first page is fetched up front');
        await changes(1, 1);
        background = startBackground();
      }
      if (count === TOTAL / 2) await changes(2, TOTAL / 2);
      // Exactly the snapshot: every old key in order, each with its old value.
      assert.equal(kv.key, keyOf(count));
      assert.ok(kv.key > previous);
      assert.equal(kv.value, count);
      assert.ok(kv.modRevision <= snapshot, `${kv.key} was read after the snapshot`);
      previous = kv.key;
      count++;
    }
  } finally {
    iterating = false;
    await background;
  }
  assert.equal(count, TOTAL);
  // One request per page (the last may come back empty), never the whole range at once.
  const pages = front.count('/kv/range');
  assert.ok(pages >= TOTAL / PAGE && pages <= TOTAL / PAGE + 1, `${pages} pages`);

  // The changes did happen, so the snapshot really was one.
  assert.ok(added > 0, 'the background writer ran during the iteration');
  assert.equal(await writer.get(keyOf(40_001)), undefined);
  assert.equal(await writer.get(keyOf(90_000)), undefined);
  assert.equal((await writer.get(`${keyOf(70_000)}+new`))?.value, -2);
  assert.equal((await writer.get('z-after-all'))?.value, -2);
  assert.ok(((await writer.get(keyOf(30_001)))?.value as number) < 0);
  assert.equal((await writer.readdir('', { countOnly: true })).count, TOTAL - 2 + 4 + added);
  await writer.rmdir('');
});

test('breaking out of the loop fetches no further page', async () => {
  const prefix = uniquePrefix('range');
  await using writer = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
  await writeMany(writer, 50, (i) => [keyOf(i), i]);
  await using front = await proxy(etcd.endpoint);
  await using reader = new Etcd({
    transport: 'gateway',
    endpoints: front.url,
    apiPrefix: '/v3',
    keyPrefix: prefix,
  });
  const seen: string[] = [];
  for await (const kv of reader.range('', { pageSize: 10 })) {
    seen.push(kv.key);
    if (seen.length === 15) break;
  }
  assert.deepEqual(
    seen,
    Array.from({ length: 15 }, (_, i) => keyOf(i)),
  );
  assert.equal(front.count('/kv/range'), 2);
});

test('small pages, a sub-prefix, and keys sharing the last key of a page', async () => {
  await using client = connect();
  for (const key of ['d/a', 'd/a0', 'd/a\u0000', 'd/b', 'd/bb', 'd/c', 'e', 'd']) {
    await client.set(key, key);
  }
  for (const pageSize of [1, 2, 3, 100]) {
    const keys: string[] = [];
    for await (const kv of client.range('d/', { pageSize })) {
      assert.equal(kv.value, kv.key);
      keys.push(kv.key);
    }
    assert.deepEqual(
      keys,
      ['d/a', 'd/a\u0000', 'd/a0', 'd/b', 'd/bb', 'd/c'],
      `pageSize ${pageSize}`,
    );
  }
  const none: string[] = [];
  for await (const kv of client.range('nothing/')) none.push(kv.key);
  assert.deepEqual(none, []);
});

test('revision reads an older snapshot; keysOnly leaves values out; serializable reads', async () => {
  await using client = connect();
  await client.set('a', 1);
  const then = await client.set('b', 2);
  await client.set('a', 10);
  await client.set('c', 3);
  const old: Array<[string, unknown]> = [];
  for await (const kv of client.range('', { revision: then.revision, pageSize: 1 })) {
    old.push([kv.key, kv.value]);
  }
  assert.deepEqual(old, [
    ['a', 1],
    ['b', 2],
  ]);
  const keysOnly: string[] = [];
  for await (const kv of client.range('', { keysOnly: true, pageSize: 2 })) {
    assert.equal(kv.valueBytes.length, 0);
    keysOnly.push(kv.key);
  }
  assert.deepEqual(keysOnly, ['a', 'b', 'c']);
  const serializable: string[] = [];
  for await (const kv of client.range('', { serializable: true })) serializable.push(kv.key);
  assert.deepEqual(serializable, ['a', 'b', 'c']);
});

test('bad options reject on the first step', async () => {
  await using client = connect();
  const bad = [{ pageSize: 0 }, { pageSize: -1 }, { pageSize: 1.5 }, { limit: 5 }, { bogus: 1 }];
  for (const options of bad) {
    const it = client.range('', options as unknown as RangeIteratorOptions);
    await assert.rejects(it.next(), InvalidArgumentError, JSON.stringify(options));
  }
  await client.close();
  await assert.rejects(client.range('').next(), ClientClosedError);
});

test('a snapshot compacted during the iteration rejects with CompactedError', async () => {
  await using client = connect();
  await writeMany(client, 10, (i) => [keyOf(i), i]);
  const it = client.range('', { pageSize: 3 });
  const first = await it.next();
  assert.equal(first.done, false);
  const later = await client.set('later', 1);
  await compact(etcd.endpoint, later.revision);
  // The rest of the first page is already here; the next page is not.
  await it.next();
  await it.next();
  await assert.rejects(it.next(), CompactedError);

  // A range at a compacted revision fails on its first page.
  await assert.rejects(client.range('', { revision: later.revision - 1n }).next(), CompactedError);
});
