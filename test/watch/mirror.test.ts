// client.mirror(prefix): list at one revision, then watch from the next; after a compaction
// that the watch cannot cross, list again and emit only the difference. Against real etcd.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, type Etcd, type Mirror, type MirrorChange, Op } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { compact } from '../client/helpers.js';
import { tcpProxy } from './tcp-proxy.js';

let one: EtcdCluster;
let three: EtcdCluster;
before(async () => {
  [one, three] = await Promise.all([startEtcd(), startEtcd({ members: 3 })]);
});
after(async () => {
  await Promise.all([one?.close(), three?.close()]);
});

function connect(prefix: string, endpoints: string | string[] = one.endpoint): Etcd<string> {
  return createClient({ endpoints, keyPrefix: prefix, codec: 'string', timeout: 3_000 });
}

/** A change as `<type> <key> <value>[ <- <previous value>]`. */
function describeChange(change: MirrorChange<string>): string {
  const base = `${change.type} ${change.kv.key} ${change.type === 'removed' ? '' : change.kv.value}`;
  return change.type === 'updated' ? `${base} <- ${change.prev.value}` : base;
}

/** Collects a mirror's change batches (from `changes()`) and its single events. */
function follow(mirror: Mirror<string>) {
  const batches: string[][] = [];
  const events: string[] = [];
  const resynced: bigint[] = [];
  const errors: Error[] = [];
  mirror.on('added', (kv) => events.push(`added ${kv.key} ${kv.value}`));
  mirror.on('updated', (kv, prev) => events.push(`updated ${kv.key} ${kv.value} <- ${prev.value}`));
  mirror.on('removed', (kv) => events.push(`removed ${kv.key} `));
  mirror.on('resynced', (revision) => resynced.push(revision));
  mirror.on('error', (e) => errors.push(e));
  const changes = mirror.changes();
  // The first next() registers the iterator before anything else happens.
  let pending = changes.next();
  const done = (async () => {
    for (;;) {
      const r = await pending;
      if (r.done) return;
      batches.push(r.value.map(describeChange));
      pending = changes.next();
    }
  })();
  return { batches, events, resynced, errors, done };
}

/** The mirror's copy as `key=value@modRevision`, and the store's, for comparison. */
const copyOf = (mirror: Mirror<string>) =>
  mirror
    .values()
    .map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`)
    .sort();

async function storeOf(client: Etcd<string>, dir: string): Promise<string[]> {
  const r = await client.readdir(dir);
  return r.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`).sort();
}

describe('mirror', () => {
  test('the initial list: every pair under the prefix, across pages, at one revision', async () => {
    const prefix = uniquePrefix('mirror-list');
    await using client = connect(prefix);
    let last = 0n;
    for (let t = 0; t < 12; t++) {
      const ops = Array.from({ length: 125 }, (_, j) => {
        const i = t * 125 + j;
        return Op.put(`items/${String(i).padStart(4, '0')}`, `v${i}`);
      });
      last = (
        await client
          .txn()
          .success(...ops)
          .commit()
      ).revision;
    }
    await client.set('itemsx', 'outside the prefix');
    const store = await client.readdir('items/');
    await using mirror = await client.mirror('items/');
    assert.equal(mirror.size, 1_500, 'more than one page of 1,000');
    assert.deepEqual(copyOf(mirror), await storeOf(client, 'items/'));
    assert.equal(mirror.get('items/0042')?.value, 'v42');
    assert.equal(mirror.get(Buffer.from('items/1499'))?.value, 'v1499');
    assert.equal(mirror.get('itemsx'), undefined);
    assert.equal(typeof mirror.revision, 'bigint');
    assert.ok(mirror.revision >= last);
    assert.equal(mirror.revision, store.revision, 'the revision of the listing');
  });

  test('added, updated and removed: as events and as change batches, in order', async () => {
    const prefix = uniquePrefix('mirror-live');
    await using client = connect(prefix);
    await client.set('m/old', 'o');
    await using mirror = await client.mirror('m/');
    const seen = follow(mirror);
    await client.set('m/a', '1');
    await client.set('m/a', '2');
    await client.set('m/b', '1');
    await client.set('outside', 'x');
    await client.delete('m/a');
    await client.delete('m/never-existed');
    const txn = await client
      .txn()
      .success(Op.put('m/c', '1'), Op.delete('m/b'), Op.put('m/old', 'o2'))
      .commit();
    const txnChanges = ['added m/c 1', 'removed m/b ', 'updated m/old o2 <- o'];
    await eventually(() => assert.equal(seen.batches.flat().length, 7));
    // etcd may send several revisions in one message, so batch boundaries are not
    // fixed, but the order is, and one revision is never split across batches.
    assert.deepEqual(seen.batches.flat(), [
      'added m/a 1',
      'updated m/a 2 <- 1',
      'added m/b 1',
      'removed m/a ',
      ...txnChanges,
    ]);
    assert.deepEqual(seen.batches.at(-1)!.slice(-3), txnChanges);
    assert.deepEqual(seen.events, seen.batches.flat());
    assert.deepEqual(copyOf(mirror), await storeOf(client, 'm/'));
    assert.equal(mirror.revision, txn.revision);
    assert.deepEqual(seen.resynced, []);
    await mirror.close();
    await seen.done;
    assert.deepEqual(seen.errors, []);
  });

  test('close() ends changes() and stops following; it is idempotent; await using closes', async () => {
    const prefix = uniquePrefix('mirror-close');
    await using client = connect(prefix);
    const mirror = await client.mirror('');
    const seen = follow(mirror);
    await client.set('a', '1');
    await eventually(() => assert.equal(seen.batches.length, 1));
    await mirror.close();
    await seen.done;
    await mirror.close();
    await client.set('b', '1');
    await client.set('a', '2');
    assert.deepEqual(
      copyOf(mirror).map((s) => s.split('@')[0]),
      ['a=1'],
      'no longer follows',
    );
    let outer: Mirror<string> | undefined;
    {
      await using scoped = await client.mirror('');
      outer = scoped;
    }
    const after = follow(outer);
    await after.done; // ends at once: the mirror is closed
    assert.deepEqual(after.batches, []);
  });

  test('an AbortSignal closes the mirror', async () => {
    const prefix = uniquePrefix('mirror-abort');
    await using client = connect(prefix);
    const controller = new AbortController();
    const mirror = await client.mirror('', { signal: controller.signal });
    const seen = follow(mirror);
    controller.abort();
    await seen.done;
    await client.set('a', '1');
    assert.equal(mirror.size, 0);
  });

  test('a reconnect without compaction passes on every change, in order, with no re-list', async () => {
    const prefix = uniquePrefix('mirror-reconnect');
    await using proxy = await tcpProxy(one.endpoint);
    await using client = connect(prefix);
    await using viaProxy = connect(prefix, proxy.url);
    await client.set('a', '1');
    await using mirror = await viaProxy.mirror('');
    const seen = follow(mirror);
    proxy.refuse(true);
    proxy.cut();
    await client.set('x', 'short-lived');
    await client.delete('x');
    await client.set('a', '2');
    proxy.refuse(false);
    await eventually(() => assert.equal(seen.events.length, 3), { timeout: 15_000 });
    assert.deepEqual(seen.events, ['added x short-lived', 'removed x ', 'updated a 2 <- 1']);
    assert.deepEqual(seen.resynced, []);
    assert.deepEqual(copyOf(mirror), await storeOf(client, ''));
  });
});

describe('mirror: compaction while disconnected', () => {
  /**
   * The scenario of both tests: a mirror of a, b, c, d loses its connection;
   * meanwhile b is updated twice, c deleted, e created, f created and deleted,
   * and the history is compacted. On reconnect the mirror must list again and
   * emit exactly: b updated (from its listed value to its last), c removed, e added.
   */
  async function scenario(
    reader: Etcd<string>,
    writer: Etcd<string>,
    cut: () => Promise<void>,
    compactAt: (revision: bigint) => Promise<void>,
    restore: () => Promise<void>,
  ): Promise<void> {
    for (const key of ['a', 'b', 'c', 'd']) await writer.set(key, '1');
    await using mirror = await reader.mirror('');
    const seen = follow(mirror);
    assert.equal(mirror.size, 4);
    await cut();
    await writer.set('b', '2');
    await writer.set('b', '3');
    await writer.delete('c');
    await writer.set('e', '1');
    await writer.set('f', '1');
    const last = await writer.delete('f');
    await compactAt(last.revision);
    await restore();
    await eventually(() => assert.equal(seen.resynced.length, 1, 'listed again'), {
      timeout: 30_000,
    });
    assert.equal(seen.resynced[0], last.revision);
    await eventually(() => assert.equal(seen.batches.length, 1));
    const expected = ['removed c ', 'updated b 3 <- 1', 'added e 1'];
    assert.deepEqual([...seen.batches[0]!].sort(), [...expected].sort(), 'only the difference');
    assert.deepEqual([...seen.events].sort(), [...expected].sort());
    assert.deepEqual(copyOf(mirror), await storeOf(writer, ''));
    assert.equal(mirror.revision, last.revision);
    // And it follows on from there.
    await writer.set('g', '1');
    await eventually(() => assert.equal(seen.batches.length, 2));
    assert.deepEqual(seen.batches[1], ['added g 1']);
    assert.deepEqual(seen.errors, []);
    await mirror.close();
    await seen.done;
  }

  test('behind a proxy on one member', async () => {
    const prefix = uniquePrefix('mirror-compact');
    await using proxy = await tcpProxy(one.endpoint);
    await using writer = connect(prefix);
    await using reader = connect(prefix, proxy.url);
    await scenario(
      reader,
      writer,
      async () => {
        proxy.refuse(true);
        proxy.cut();
      },
      (revision) => compact(one.endpoint, revision),
      async () => proxy.refuse(false),
    );
  });

  test('a member killed while the others write and compact, then restarted', async () => {
    const prefix = uniquePrefix('mirror-kill');
    const leader = await three.leader();
    const member = three.members.find((m) => m !== leader)!;
    const others = three.members.filter((m) => m !== member);
    await using writer = connect(
      prefix,
      others.map((m) => m.clientUrl),
    );
    await using reader = connect(prefix, member.clientUrl);
    try {
      await scenario(
        reader,
        writer,
        () => member.kill(),
        (revision) => compact(others[0]!.clientUrl, revision),
        async () => {
          member.start('existing');
          await member.waitHealthy(30_000);
        },
      );
    } finally {
      if (!member.running) member.start('existing');
      await member.waitHealthy(30_000);
    }
  });
});
