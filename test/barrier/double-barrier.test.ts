// DoubleBarrier against a real etcd member: N participants enter together and
// leave together, with the keys etcd's Go recipes use; too many participants,
// aborts and misuse.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BarrierStateError, DoubleBarrier, TooManyParticipantsError } from '@etcdkit/barrier';
import { Etcd, InvalidArgumentError, type Session } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { expectWatchers, track } from '../mutex/helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.close());

const connect = () => new Etcd({ endpoints: etcd.endpoint });

/** The participant keys under `<key>/waiters/`. */
async function waiters(client: Etcd, key: string): Promise<string[]> {
  return (await client.readdir(`${key}/waiters/`, { keysOnly: true })).kvs.map((kv) => kv.key);
}

async function expectWaiters(client: Etcd, key: string, count: number): Promise<string[]> {
  return eventually(
    async () => {
      const keys = await waiters(client, key);
      assert.equal(keys.length, count, `participants under ${key}`);
      return keys;
    },
    { timeout: 15_000, interval: 50 },
  );
}

/** N participants, each on its own client and session (TTL 30 s). */
async function participants(n: number, key: string) {
  const list: { client: Etcd; session: Session; barrier: DoubleBarrier; name: string }[] = [];
  for (let i = 0; i < n; i++) {
    const client = connect();
    const session = await client.session({ ttl: 30 });
    list.push({
      client,
      session,
      barrier: new DoubleBarrier(client, key, n, { session }),
      name: `p${i}`,
    });
  }
  return {
    list,
    async [Symbol.asyncDispose]() {
      await Promise.all(list.map((p) => p.client.close()));
    },
  };
}

test('four participants enter together and leave together', async () => {
  const key = `${uniquePrefix('double')}four`;
  await using group = await participants(4, key);
  const [first, second, third, last] = group.list as [
    (typeof group.list)[0],
    (typeof group.list)[0],
    (typeof group.list)[0],
    (typeof group.list)[0],
  ];
  const log: string[] = [];
  const step = (p: { name: string }, what: string) => () => {
    log.push(`${p.name} ${what}`);
  };

  // One after the other, so that the first has the oldest key.
  const entering = [];
  for (const [i, p] of [first, second, third].entries()) {
    entering.push(track(p.barrier.enter().then(step(p, 'entered'))));
    await expectWaiters(first.client, key, i + 1);
  }
  await expectWatchers(etcd.endpoint, 3);
  assert.equal(log.join(), '', 'no one is through with three of four in');
  assert.equal(await first.client.get(`${key}/ready`), undefined);
  log.push('last enters');
  await last.barrier.enter();
  log.push('last entered');
  await Promise.all(entering.map((e) => e.promise));
  assert.equal(log.indexOf('last enters'), 0, log.join(', '));
  assert.ok(group.list.every((p) => p.barrier.entered));
  const ready = await first.client.get(`${key}/ready`);
  assert.ok(ready, 'the last one in put the ready key');
  assert.equal(ready.lease, 0n);
  const keys = await waiters(first.client, key);
  assert.deepEqual(
    keys.sort(),
    group.list.map((p) => p.barrier.participantKey).sort(),
    'each participant key is under waiters/',
  );
  for (const p of group.list) {
    const kv = await first.client.get(p.barrier.participantKey!);
    assert.equal(kv?.lease, p.session.lease, 'on the participant session lease');
  }

  log.length = 0;
  const leaving = [first, second, third].map((p) => track(p.barrier.leave().then(step(p, 'left'))));
  // The oldest key stays until all others are gone; the others delete theirs at once.
  const [stays] = await expectWaiters(first.client, key, 2);
  assert.deepEqual(
    [stays, last.barrier.participantKey].sort(),
    (await waiters(first.client, key)).sort(),
  );
  assert.equal(stays, first.barrier.participantKey, 'the first in (oldest key) stays');
  assert.equal(log.join(), '', 'no one is out while the last has not left');
  log.push('last leaves');
  await last.barrier.leave();
  await Promise.all(leaving.map((l) => l.promise));
  assert.equal(log[0], 'last leaves', log.join(', '));
  assert.deepEqual(await waiters(first.client, key), []);
  assert.equal(await first.client.get(`${key}/ready`), undefined, 'the last out deleted ready');
  assert.ok(group.list.every((p) => !p.barrier.entered));
  await expectWatchers(etcd.endpoint, 0);
});

test('participants on one client share its session, and can go round again', async () => {
  await using client = connect();
  const key = `${uniquePrefix('double')}shared`;
  const barriers = [0, 1, 2].map(() => new DoubleBarrier(client, key, 3));
  for (let round = 0; round < 2; round++) {
    await Promise.all(barriers.map((b) => b.enter()));
    const session = await client.sharedSession();
    for (const b of barriers) {
      assert.equal((await client.get(b.participantKey!))?.lease, session.lease);
    }
    await Promise.all(barriers.map((b) => b.leave()));
    assert.deepEqual(await waiters(client, key), []);
  }
});

test('one participant too many is refused and its key withdrawn', async () => {
  await using client = connect();
  const key = `${uniquePrefix('double')}too-many`;
  const pair = [new DoubleBarrier(client, key, 2), new DoubleBarrier(client, key, 2)];
  await Promise.all(pair.map((b) => b.enter()));
  const third = new DoubleBarrier(client, key, 2);
  const err = await third.enter().catch((e: unknown) => e);
  assert.ok(err instanceof TooManyParticipantsError, String(err));
  assert.deepEqual([err.found, err.count], [3, 2]);
  assert.equal(third.entered, false);
  assert.equal(third.participantKey, undefined);
  await expectWaiters(client, key, 2);
  await Promise.all(pair.map((b) => b.leave()));
  assert.deepEqual(await waiters(client, key), []);
});

test('an aborted enter withdraws its key; an aborted leave too, and the others finish', async () => {
  await using client = connect();
  const key = `${uniquePrefix('double')}abort`;
  const quitter = new DoubleBarrier(client, key, 2);
  const controller = new AbortController();
  const entering = quitter.enter({ signal: controller.signal });
  await expectWaiters(client, key, 1);
  await expectWatchers(etcd.endpoint, 1);
  const reason = new Error('not waiting any longer');
  controller.abort(reason);
  await assert.rejects(entering, (e) => e === reason);
  await expectWaiters(client, key, 0);
  await expectWatchers(etcd.endpoint, 0);
  assert.equal(quitter.entered, false);

  // Two enter; the oldest aborts its leave: the other is not held up by its key.
  const a = new DoubleBarrier(client, key, 2);
  const b = new DoubleBarrier(client, key, 2);
  const aIn = a.enter();
  await expectWaiters(client, key, 1);
  await b.enter();
  await aIn;
  const leaving = new AbortController();
  const aOut = a.leave({ signal: leaving.signal });
  await expectWatchers(etcd.endpoint, 1); // the oldest waits for the newest to go
  leaving.abort(reason);
  await assert.rejects(aOut, (e) => e === reason);
  await expectWaiters(client, key, 1);
  await b.leave();
  assert.deepEqual(await waiters(client, key), []);
  await expectWatchers(etcd.endpoint, 0);
});

test('enter twice, or leave without entering, is a BarrierStateError; bad input is refused', async () => {
  await using client = connect();
  const key = `${uniquePrefix('double')}state`;
  const b = new DoubleBarrier(client, key, 1);
  await assert.rejects(b.leave(), BarrierStateError);
  await b.enter(); // a count of one: through at once
  await assert.rejects(b.enter(), BarrierStateError);
  await b.leave();
  await assert.rejects(b.leave(), BarrierStateError);
  assert.deepEqual(await waiters(client, key), []);
  assert.throws(() => new DoubleBarrier(client, key, 0), InvalidArgumentError);
  assert.throws(() => new DoubleBarrier(client, key, 1.5), InvalidArgumentError);
  assert.throws(() => new DoubleBarrier(client, `${key}/`, 2), InvalidArgumentError);
  assert.throws(
    () => new DoubleBarrier(client, key, 2, { ttl: 5 } as object),
    InvalidArgumentError,
  );
  await assert.rejects(b.enter({ timeout: 1 } as object), InvalidArgumentError);
});

test('disposing an entered participant withdraws its key', async () => {
  await using client = connect();
  const key = `${uniquePrefix('double')}dispose`;
  {
    await using b = new DoubleBarrier(client, key, 1);
    await b.enter();
    await expectWaiters(client, key, 1);
  }
  assert.deepEqual(await waiters(client, key), []);
});
