// What each isolation level lets a transaction see and when its commit conflicts,
// shown by a second client writing between a run's reads and its commit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, type JsonValue } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Isolation, stm } from '@etcdkit/stm';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd();
});
after(async () => {
  await cluster?.close();
});

/** Two clients on one fresh prefix: the transaction's, and a second writer's. */
function pair(): { etcd: Etcd; other: Etcd; [Symbol.asyncDispose](): Promise<void> } {
  const keyPrefix = uniquePrefix('stm-isolation');
  const etcd = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
  const other = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
  return {
    etcd,
    other,
    async [Symbol.asyncDispose]() {
      await Promise.all([etcd.close(), other.close()]);
    },
  };
}

interface Expected {
  /** Final value of a counter incremented while another writer set it to 100 during run 1. */
  increment: number;
  incrementRuns: number;
  /** What run after run read for `b`, when `b` changed after the first read of run 1. */
  seenB: JsonValue[];
  /** Runs of a transaction that read `a` and blindly wrote `c`, which changed meanwhile. */
  blindWriteRuns: number;
}

const LEVELS: Record<Isolation, Expected> = {
  serializable: { increment: 101, incrementRuns: 2, seenB: [1, 2], blindWriteRuns: 2 },
  'repeatable-read': { increment: 101, incrementRuns: 2, seenB: [2], blindWriteRuns: 1 },
  'read-committed': { increment: 2, incrementRuns: 1, seenB: [2], blindWriteRuns: 1 },
};

for (const [isolation, expected] of Object.entries(LEVELS) as [Isolation, Expected][]) {
  describe(`isolation ${isolation}`, () => {
    test('a key read and then changed by another writer', async () => {
      await using p = pair();
      await p.etcd.set('n', 1);
      let runs = 0;
      await stm(
        p.etcd,
        async (tx) => {
          runs++;
          const n = Number(await tx.get('n'));
          if (runs === 1) await p.other.set('n', 100);
          tx.put('n', n + 1);
        },
        { isolation },
      );
      assert.equal((await p.etcd.get('n'))?.value, expected.increment);
      assert.equal(runs, expected.incrementRuns);
    });

    test('a key changed after the first read, then read', async () => {
      await using p = pair();
      await p.etcd.set('a', 1);
      await p.etcd.set('b', 1);
      const seenB: JsonValue[] = [];
      await stm(
        p.etcd,
        async (tx) => {
          await tx.get('a');
          if (seenB.length === 0) await p.other.set('b', 2);
          seenB.push((await tx.get('b')) ?? null);
          tx.put('c', 'done');
        },
        { isolation },
      );
      assert.deepEqual(seenB, expected.seenB);
      assert.equal((await p.etcd.get('c'))?.value, 'done');
    });

    test('a key written without being read, changed meanwhile', async () => {
      await using p = pair();
      await p.etcd.set('a', 1);
      let runs = 0;
      await stm(
        p.etcd,
        async (tx) => {
          runs++;
          await tx.get('a');
          if (runs === 1) await p.other.set('c', 'theirs');
          tx.put('c', 'ours');
        },
        { isolation },
      );
      assert.equal(runs, expected.blindWriteRuns);
      assert.equal((await p.etcd.get('c'))?.value, 'ours');
    });
  });
}

describe('every isolation', () => {
  test('resolves to the result; reads see the run’s own writes and deletes', async () => {
    await using p = pair();
    for (const isolation of Object.keys(LEVELS) as Isolation[]) {
      await p.etcd.set('gone', 'here');
      const result = await stm(
        p.etcd,
        async (tx) => {
          assert.equal(await tx.get('missing'), undefined);
          assert.equal(await tx.rev('missing'), 0n);
          tx.put('x', { isolation });
          assert.deepEqual(await tx.get('x'), { isolation });
          assert.equal(await tx.get('gone'), 'here');
          tx.del('gone');
          assert.equal(await tx.get('gone'), undefined);
          return isolation.length;
        },
        { isolation },
      );
      assert.equal(result, isolation.length);
      assert.deepEqual((await p.etcd.get('x'))?.value, { isolation });
      assert.equal(await p.etcd.get('gone'), undefined);
    }
  });

  test('a missing key read and then created by another writer is a conflict', async () => {
    await using p = pair();
    for (const isolation of ['serializable', 'repeatable-read'] as const) {
      let runs = 0;
      const seen: JsonValue[] = [];
      await stm(
        p.etcd,
        async (tx) => {
          runs++;
          seen.push((await tx.get(`slot-${isolation}`)) ?? null);
          if (runs === 1) await p.other.set(`slot-${isolation}`, 'theirs');
          if (seen.at(-1) === null) tx.put(`slot-${isolation}`, 'ours');
        },
        { isolation },
      );
      assert.deepEqual(seen, [null, 'theirs']);
      assert.equal((await p.etcd.get(`slot-${isolation}`))?.value, 'theirs');
    }
  });

  test('reads under serializable share the first read’s revision, even when concurrent', async () => {
    await using p = pair();
    await p.etcd.set('a', 1);
    await p.etcd.set('b', 1);
    const revisions: bigint[][] = [];
    await stm(p.etcd, async (tx) => {
      const [ra, rb] = await Promise.all([tx.rev('a'), tx.rev('b')]);
      if (revisions.length === 0) await p.other.set('a', 2);
      revisions.push([ra, rb, await tx.rev('a')]);
      tx.put('c', 1);
    });
    // Run 1 reads a's old revision again after the change; run 2 sees the new one.
    assert.equal(revisions.length, 2);
    assert.equal(revisions[0]![0], revisions[0]![2]);
    assert.ok(revisions[1]![0]! > revisions[0]![0]!);
  });

  test('a client with the string or bytes codec reads and writes its own value type', async () => {
    const keyPrefix = uniquePrefix('stm-codecs');
    await using text = new Etcd({ endpoints: cluster.endpoint, keyPrefix, codec: 'string' });
    await using bytes = new Etcd({ endpoints: cluster.endpoint, keyPrefix, codec: 'bytes' });
    await stm(text, (tx) => tx.put('k', 'plain text'));
    const got = await stm(bytes, async (tx) => {
      const value = await tx.get('k');
      tx.put('copy', Uint8Array.from([0, 255, ...(value ?? [])]));
      return value;
    });
    assert.ok(got instanceof Uint8Array);
    assert.equal(Buffer.from(got).toString(), 'plain text');
    const copy = (await bytes.get('copy'))?.value;
    assert.deepEqual([...(copy ?? [])].slice(0, 2), [0, 255]);
  });
});
