// readdir (limit, sorting, keysOnly, countOnly, revision) and rmdir.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, type EtcdOptions, InvalidArgumentError, type SortTarget } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions<string> = {}): Etcd<string> {
  return new Etcd<string>({
    endpoints: etcd.endpoint,
    keyPrefix: uniquePrefix('dir'),
    codec: 'string',
    ...options,
  });
}

const keysOf = (r: { kvs: Array<{ key: string }> }) => r.kvs.map((kv) => kv.key);

describe('readdir', () => {
  test('lists every key under the prefix, sorted by key, and nothing beside it', async () => {
    await using client = connect();
    for (const key of ['d/c', 'd/a', 'd/b', 'd', 'd0', 'e', 'c']) await client.set(key, key);
    const r = await client.readdir('d/');
    assert.deepEqual(keysOf(r), ['d/a', 'd/b', 'd/c']);
    assert.deepEqual(
      r.kvs.map((kv) => kv.value),
      ['d/a', 'd/b', 'd/c'],
    );
    assert.equal(r.count, 3);
    assert.equal(r.more, false);
    assert.equal(typeof r.revision, 'bigint');
    assert.deepEqual(keysOf(await client.readdir('d')), ['d', 'd/a', 'd/b', 'd/c', 'd0']);
    assert.deepEqual(keysOf(await client.readdir('nothing/')), []);
    assert.equal((await client.readdir('nothing/')).count, 0);
  });

  test('limit returns the first keys, with more and the full count', async () => {
    await using client = connect();
    for (let i = 0; i < 5; i++) await client.set(`k${i}`, String(i));
    const two = await client.readdir('k', { limit: 2 });
    assert.deepEqual(keysOf(two), ['k0', 'k1']);
    assert.equal(two.more, true);
    assert.equal(two.count, 5);
    const five = await client.readdir('k', { limit: 5 });
    assert.equal(five.kvs.length, 5);
    assert.equal(five.more, false);
    const unlimited = await client.readdir('k', { limit: 0 });
    assert.equal(unlimited.kvs.length, 5);
    assert.equal(unlimited.more, false);
  });

  test('sortOrder by name and by the seed numbers', async () => {
    await using client = connect();
    for (const key of ['b', 'a', 'c']) await client.set(key, key);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 'ascend' })), ['a', 'b', 'c']);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 1 })), ['a', 'b', 'c']);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 'descend' })), ['c', 'b', 'a']);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 2 })), ['c', 'b', 'a']);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 'none' })), ['a', 'b', 'c']);
    assert.deepEqual(keysOf(await client.readdir('', { sortOrder: 0 })), ['a', 'b', 'c']);
    const top = await client.readdir('', { sortOrder: 'descend', limit: 1 });
    assert.deepEqual(keysOf(top), ['c']);
    assert.equal(top.more, true);
  });

  test('sortTarget by name and by the seed numbers orders by each field', async () => {
    await using client = connect();
    // Chosen so that every field gives a different order:
    //   key a b c | version b c a | create c a b | mod b a c | value c b a
    await client.set('c', '1');
    await client.set('a', '3');
    await client.set('b', '2');
    await client.set('a', '3');
    await client.set('a', '3');
    await client.set('c', '1');
    const expected: Array<[SortTarget, 0 | 1 | 2 | 3 | 4, string[]]> = [
      ['key', 0, ['a', 'b', 'c']],
      ['version', 1, ['b', 'c', 'a']],
      ['createRevision', 2, ['c', 'a', 'b']],
      ['modRevision', 3, ['b', 'a', 'c']],
      ['value', 4, ['c', 'b', 'a']],
    ];
    for (const [name, number, order] of expected) {
      const byName = await client.readdir('', { sortTarget: name, sortOrder: 'ascend' });
      assert.deepEqual(keysOf(byName), order, `${name} ascending`);
      const byNumber = await client.readdir('', { sortTarget: number, sortOrder: 1 });
      assert.deepEqual(keysOf(byNumber), order, `${number} ascending`);
      const down = await client.readdir('', { sortTarget: name, sortOrder: 'descend' });
      assert.deepEqual(keysOf(down), [...order].reverse(), `${name} descending`);
      const downByNumber = await client.readdir('', { sortTarget: number, sortOrder: 2 });
      assert.deepEqual(keysOf(downByNumber), [...order].reverse(), `${number} descending`);
      const first = await client.readdir('', { sortTarget: name, sortOrder: 'ascend', limit: 1 });
      assert.deepEqual(keysOf(first), order.slice(0, 1), `${name} with limit`);
    }
  });

  test('unknown sort names and numbers are refused', async () => {
    await using client = connect();
    const bad = [
      { sortOrder: 'up' },
      { sortOrder: 3 },
      { sortOrder: -1 },
      { sortTarget: 'lease' },
      { sortTarget: 5 },
      { sortTarget: 'KEY' },
    ];
    for (const options of bad) {
      await assert.rejects(
        client.readdir('', options as unknown as Parameters<typeof client.readdir>[1]),
        InvalidArgumentError,
        JSON.stringify(options),
      );
    }
  });

  test('keysOnly returns keys and metadata with empty values', async () => {
    await using client = connect();
    await client.set('a', 'value-a');
    await client.set('b', 'value-b');
    const r = await client.readdir('', { keysOnly: true });
    assert.deepEqual(keysOf(r), ['a', 'b']);
    for (const kv of r.kvs) {
      assert.equal(kv.valueBytes.length, 0);
      assert.equal(kv.version, 1);
      assert.ok(kv.modRevision > 0n);
    }
    assert.equal(r.count, 2);
  });

  test('countOnly returns the count and no pairs', async () => {
    await using client = connect();
    for (const key of ['a', 'b', 'c']) await client.set(key, key);
    const r = await client.readdir('', { countOnly: true });
    assert.equal(r.count, 3);
    assert.deepEqual(r.kvs, []);
  });

  test('revision lists the directory as it was', async () => {
    await using client = connect();
    await client.set('a', 'a1');
    const then = await client.set('b', 'b1');
    await client.set('a', 'a2');
    await client.set('c', 'c1');
    await client.delete('b');
    const old = await client.readdir('', { revision: then.revision });
    assert.deepEqual(
      old.kvs.map((kv) => [kv.key, kv.value]),
      [
        ['a', 'a1'],
        ['b', 'b1'],
      ],
    );
    assert.equal(old.revision > then.revision, true, 'the header carries the current revision');
    const now = await client.readdir('');
    assert.deepEqual(
      now.kvs.map((kv) => [kv.key, kv.value]),
      [
        ['a', 'a2'],
        ['c', 'c1'],
      ],
    );
  });

  test('serializable lists the directory', async () => {
    await using client = connect();
    await client.set('a', 'a');
    assert.deepEqual(keysOf(await client.readdir('', { serializable: true })), ['a']);
  });
});

describe('rmdir', () => {
  test('deletes every key under the prefix and nothing beside it', async () => {
    await using client = connect();
    for (const key of ['d/a', 'd/b', 'd/c/d', 'd', 'd0', 'e']) await client.set(key, key);
    const r = await client.rmdir('d/');
    assert.equal(r.deleted, 3);
    assert.deepEqual(r.prevKvs, []);
    assert.equal(typeof r.revision, 'bigint');
    assert.deepEqual(keysOf(await client.readdir('')), ['d', 'd0', 'e']);
    const none = await client.rmdir('d/');
    assert.equal(none.deleted, 0);
  });

  test('prevKv returns the deleted pairs', async () => {
    await using client = connect();
    await client.set('d/a', 'A');
    await client.set('d/b', 'B');
    const r = await client.rmdir('d/', { prevKv: true });
    assert.equal(r.deleted, 2);
    assert.deepEqual(
      r.prevKvs.map((kv) => [kv.key, kv.value]),
      [
        ['d/a', 'A'],
        ['d/b', 'B'],
      ],
    );
  });

  test('an empty prefix without keyPrefix is refused', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    const marker = `${uniquePrefix('dir')}marker`;
    await client.set(marker, 1);
    await assert.rejects(client.rmdir(''), InvalidArgumentError);
    await assert.rejects(client.rmdir(new Uint8Array(0)), InvalidArgumentError);
    await assert.rejects(client.rmdir('', { prevKv: true }), InvalidArgumentError);
    assert.equal((await client.get(marker))?.value, 1, 'nothing was deleted');
    await client.delete(marker);
  });
});
