// The client's shared view of a queue: one watch per client and prefix, exact at its revision,
// against a real member.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient, type KeyValue, type QueueState, QueueView } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { metric } from '../watch/support.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const watchersOnServer = () => metric(etcd.endpoint, 'etcd_debugging_mvcc_watcher_total');

async function watchersBecome(count: number): Promise<void> {
  await eventually(async () => assert.equal(await watchersOnServer(), count));
}

/** Which of `keys` the view holds, in the order given, as `key@createRevision`. */
function contents(state: QueueState, keys: string[]): string[] {
  return keys.flatMap((k) => {
    const kv = state.get(k);
    return kv ? [`${k}@${kv.createRevision}`] : [];
  });
}

/** Waits until the view has reached `revision`, and returns what it holds of `keys`. */
async function at(view: QueueView, revision: bigint, keys: string[]): Promise<string[]> {
  return view.until((state) => (state.revision >= revision ? contents(state, keys) : undefined));
}

describe('queue view', () => {
  test('one watch per client and prefix, however many use it; cancelled once nobody does', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('qv') });
    await watchersBecome(0);
    const views = Array.from({ length: 5 }, () => QueueView.use(client, 'q/'));
    assert.ok(
      views.every((v) => v === views[0]),
      'the same view for every user',
    );
    const other = QueueView.use(client, 'other/');
    assert.notEqual(other, views[0]);
    const put = await client.set('q/a', '');
    await Promise.all([...views, other].map((v) => at(v, 0n, [])));
    assert.deepEqual(await at(views[0]!, put.revision, ['q/a']), [`q/a@${put.revision}`]);
    await watchersBecome(2);
    for (const v of views) v.release();
    other.release();
    await watchersBecome(0);
    // A later user gets a new view, which reads the prefix anew.
    const again = QueueView.use(client, 'q/');
    assert.notEqual(again, views[0]);
    assert.deepEqual(await at(again, put.revision, ['q/a']), [`q/a@${put.revision}`]);
    again.release();
  });

  test('every event of one revision applies: a revoked lease takes all its keys from the view', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('qv') });
    const view = QueueView.use(client, 'q/');
    try {
      const lease = await client.grant(60);
      const keys = ['q/a', 'q/b', 'q/c'];
      for (const k of keys) await client.set(k, '', { lease: lease.id });
      const kept = await client.set('q/d', '');
      assert.equal((await at(view, kept.revision, keys)).length, 3);
      const revoked = await client.revoke(lease.id);
      assert.deepEqual(await at(view, revoked.revision, [...keys, 'q/d']), [
        `q/d@${kept.revision}`,
      ]);
    } finally {
      view.release();
    }
  });

  test('what was written while the view was being read is neither lost nor applied twice', async () => {
    const keyPrefix = uniquePrefix('qv');
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix });
    await using writer = createClient({ endpoints: etcd.endpoint, keyPrefix });
    const keys = Array.from({ length: 20 }, (_, i) => `q/${String(i).padStart(2, '0')}`);
    let stop = false;
    // Puts and deletes go on while views are created, read and followed.
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        const k = keys[i % keys.length]!;
        if (i % 3 === 2) await writer.delete(k);
        else await writer.set(k, String(i));
      }
    })();
    try {
      for (let round = 0; round < 5; round++) {
        const view = QueueView.use(client, 'q/');
        try {
          const mark = await client.set('q/zz-mark', String(round));
          // What the view holds at some revision at or after the mark, and what etcd held then.
          const seen = await view.until((state) =>
            state.revision >= mark.revision
              ? { revision: state.revision, keys: contents(state, keys) }
              : undefined,
          );
          const r = await client.readdir('q/', { revision: seen.revision });
          const truth = r.kvs
            .filter((kv) => keys.includes(kv.key))
            .map((kv) => `${kv.key}@${kv.createRevision}`);
          assert.deepEqual(seen.keys, truth, `round ${round}, revision ${seen.revision}`);
        } finally {
          view.release();
        }
        // The next round starts a new view, read while the writes go on.
        await watchersBecome(0);
      }
    } finally {
      stop = true;
      await writing;
    }
  });

  test('until() ends at the abort of its signal, with the reason', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('qv') });
    const view = QueueView.use(client, 'q/');
    try {
      const reason = new Error('no longer needed');
      await assert.rejects(
        view.until(() => undefined, AbortSignal.abort(reason)),
        (err) => err === reason,
      );
      const controller = new AbortController();
      const pending = view.until(() => undefined, controller.signal);
      controller.abort(reason);
      await assert.rejects(pending, (err) => err === reason);
    } finally {
      view.release();
    }
  });

  test('countOlder counts each older key by its weight, up to the limit', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('qv') });
    await client.set('q/a', '3');
    await client.set('other', '5');
    await client.set('q/b', '2');
    const last = await client.set('q/c', '1');
    const view = QueueView.use(client, 'q/');
    try {
      const weight = (kv: KeyValue<unknown>) => Number(kv.value);
      const count = (limit: number, w?: typeof weight) =>
        view.until((s) =>
          s.revision >= last.revision ? s.countOlder(last.revision, 'q/', limit, w) : undefined,
        );
      assert.equal(await count(10), 2, 'two keys older than q/c, one each');
      assert.equal(await count(10, weight), 5, '3 + 2');
      assert.equal(await count(4, weight), 5, 'stops at the first key that reaches the limit');
      assert.equal(await count(3, weight), 3, 'q/a alone reaches it');
    } finally {
      view.release();
    }
  });

  test('a delete its holder announced is a release; any other delete asks waiters to read', async () => {
    await using client = createClient({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('qv') });
    const early = await client.set('q/0', '');
    const view = QueueView.use(client, 'q/');
    try {
      await at(view, early.revision, []);
      const a = await client.set('q/a', '');
      const b = await client.set('q/b', '');
      await at(view, b.revision, []);
      assert.equal(view.onlyReleasedSince(b.revision), true, 'nothing left since b was created');
      // Created before the view read the queue: what went before then was not seen.
      assert.equal(view.onlyReleasedSince(early.revision), false);

      view.releasing('q/a', a.revision);
      const released = await client.delete('q/a');
      assert.deepEqual(await at(view, released.revision, ['q/a', 'q/b']), [`q/b@${b.revision}`]);
      assert.equal(view.onlyReleasedSince(b.revision), true, 'a was released by its holder');

      const c = await client.set('q/c', '');
      const gone = await client.delete('q/b');
      assert.deepEqual(await at(view, gone.revision, ['q/b', 'q/c']), [`q/c@${c.revision}`]);
      assert.equal(view.onlyReleasedSince(c.revision), false, 'b was deleted, not released');
      // A read answered after the view had seen that delete settles it.
      view.settled(gone.revision - 1n);
      assert.equal(view.onlyReleasedSince(c.revision), false, 'settled only up to before it');
      view.settled(gone.revision);
      assert.equal(view.onlyReleasedSince(c.revision), true);
      const d = await client.set('q/d', '');
      await at(view, d.revision, []);
      assert.equal(view.onlyReleasedSince(d.revision), true, 'b went before d was created');

      // A mark for another incarnation of the key does not cover this one.
      view.releasing('q/c', c.revision - 1n);
      const e = await client.set('q/e', '');
      const cGone = await client.delete('q/c');
      await at(view, cGone.revision, []);
      assert.equal(view.onlyReleasedSince(e.revision), false);
    } finally {
      view.release();
    }
  });
});
