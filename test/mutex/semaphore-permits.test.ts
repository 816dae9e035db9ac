// Semaphore permits against a real etcd member: several permits per holder,
// strict arrival order (a large request is not overtaken by small ones), one
// limit agreed by every contender, and list().
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { Etcd, InvalidArgumentError, Op, QueueView, type Session } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Lock, Semaphore, SemaphoreLimitError } from '@etcdkit/mutex';
import { expectQueue, expectQueueLength, queueKeys, type Tracked, track } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint });
}

function semName(label: string): string {
  return `${uniquePrefix('permits')}${label}`;
}

/**
 * Permits held, recorded in the test process the moment each acquire
 * resolves and before each release is sent: a grant over the limit, or out
 * of arrival order, is caught when it happens.
 */
class Permits {
  readonly order: string[] = [];
  readonly violations: string[] = [];
  readonly #held = new Map<string, number>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get total(): number {
    return [...this.#held.values()].reduce((a, b) => a + b, 0);
  }

  acquired(id: string, permits: number): void {
    if (this.total + permits > this.#limit) {
      this.violations.push(`${id} took ${permits} while ${this.total} of ${this.#limit} were held`);
    }
    this.#held.set(id, permits);
    this.order.push(id);
  }

  releasing(id: string): void {
    this.#held.delete(id);
  }
}

interface Contender {
  id: string;
  permits: number;
  lock: Tracked<Lock>;
}

function contend(semaphore: Semaphore, ledger: Permits, id: string, permits: number): Contender {
  const lock = track(
    semaphore.acquire({ permits }).then((held) => {
      ledger.acquired(id, permits);
      return held;
    }),
  );
  return { id, permits, lock };
}

async function release(ledger: Permits, c: Contender): Promise<void> {
  ledger.releasing(c.id);
  await (await c.lock.promise).release();
}

/**
 * Resolves once the client's shared view of the queue has applied the
 * release of `gone` and its waiters have run: a waiter the view would let in
 * has been let in by then.
 */
async function viewSawRelease(client: Etcd, name: string, gone: Contender): Promise<void> {
  const { key, token } = await gone.lock.promise;
  const view = QueueView.use(client, `${name}/`);
  try {
    await view.until((state) =>
      state.revision >= token && state.get(key)?.createRevision !== token ? true : undefined,
    );
  } finally {
    view.release();
  }
  for (let i = 0; i < 5; i++) await setImmediate();
}

test('permits are checked: 1 up to the limit, and no unknown option', async () => {
  await using client = connect();
  const semaphore = new Semaphore(client, semName('check'), 3);
  for (const permits of [0, -1, 4, 1.5, Number.NaN, '2' as unknown as number]) {
    await assert.rejects(
      semaphore.acquire({ permits }),
      InvalidArgumentError,
      `permits ${String(permits)}`,
    );
  }
  await assert.rejects(
    semaphore.acquire({ permit: 2 } as never),
    /unknown option "permit" \(known: signal, timeout, permits\)/,
  );
  await expectQueue(client, semaphore.name, []);
});

test('holders take several permits; a large request at the head is not overtaken by small ones', async () => {
  await using client = connect();
  const name = semName('fifo');
  const limit = 5;
  const semaphore = new Semaphore(client, name, limit);
  const ledger = new Permits(limit);
  const a = contend(semaphore, ledger, 'a', 2);
  await a.lock.promise;
  const b = contend(semaphore, ledger, 'b', 3);
  await b.lock.promise;
  // Full. c asks for 4, then d, e and f for 1 each: they queue behind c.
  const c = contend(semaphore, ledger, 'c', 4);
  await expectQueueLength(client, name, 3);
  const small: Array<{ s: Contender }> = [];
  for (const id of ['d', 'e', 'f']) {
    small.push({ s: contend(semaphore, ledger, id, 1) });
    await expectQueueLength(client, name, 3 + small.length);
  }
  // a leaves: 3 of 5 held. c (4) does not fit; d (1) would, but c is ahead of it.
  await release(ledger, a);
  await viewSawRelease(client, name, a);
  assert.equal(c.lock.settled, false, 'c does not fit yet');
  assert.deepEqual(
    small.map(({ s }) => s.lock.settled),
    [false, false, false],
    'nobody overtakes c',
  );
  const listed = await semaphore.list();
  assert.deepEqual(
    listed.map((e) => [e.permits, e.holds]),
    [
      [3, true],
      [4, false],
      [1, false],
      [1, false],
      [1, false],
    ],
  );
  // b leaves: c takes 4 and d the last one; e and f wait.
  await release(ledger, b);
  await c.lock.promise;
  await small[0]!.s.lock.promise;
  await viewSawRelease(client, name, b);
  assert.deepEqual(
    small.map(({ s }) => s.lock.settled),
    [true, false, false],
  );
  await release(ledger, c);
  await small[1]!.s.lock.promise;
  await small[2]!.s.lock.promise;
  for (const { s } of small) await release(ledger, s);
  assert.deepEqual(ledger.violations, []);
  assert.deepEqual(ledger.order, ['a', 'b', 'c', 'd', 'e', 'f']);
  const tokens = await Promise.all(
    [a, b, c, ...small.map(({ s }) => s)].map((x) => x.lock.promise),
  );
  for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]!.token > tokens[i - 1]!.token);
  await expectQueue(client, name, []);
});

test('many contenders of three clients taking 1 to 3 permits never hold more than the limit', async (t) => {
  const clients = [connect(), connect(), connect()];
  const name = semName('busy');
  const limit = 4;
  const ledger = new Permits(limit);
  let max = 0;
  await Promise.all(
    Array.from({ length: 9 }, async (_, i) => {
      const semaphore = new Semaphore(clients[i % 3]!, name, limit);
      for (let round = 0; round < 4; round++) {
        const permits = 1 + ((i + round) % 3);
        const id = `c${i}.${round}`;
        const lock = await semaphore.acquire({ permits });
        ledger.acquired(id, permits);
        max = Math.max(max, ledger.total);
        await setImmediate();
        ledger.releasing(id);
        await lock.release();
      }
    }),
  );
  t.diagnostic(`36 acquisitions, at most ${max} of ${limit} permits held at once`);
  assert.deepEqual(ledger.violations, []);
  await expectQueue(clients[0]!, name, []);
  await Promise.all(clients.map((c) => c.close()));
});

test('a contender whose limit differs from the queued ones is refused, and writes nothing', async () => {
  await using client = connect();
  await using other = connect();
  const name = semName('limits');
  const three = await new Semaphore(client, name, 3).acquire();
  const waiting = track(new Semaphore(client, name, 3).acquire({ permits: 3 }));
  await expectQueueLength(client, name, 2);
  const five = new Semaphore(other, name, 5);
  const refused = await five.acquire().then(
    () => assert.fail('a limit of 5 was accepted while contenders of 3 are queued'),
    (err: unknown) => err,
  );
  assert.ok(refused instanceof SemaphoreLimitError, String(refused));
  assert.equal(refused.limit, 5);
  assert.equal(refused.queuedLimit, 3);
  assert.equal(refused.holder, three.key);
  assert.equal(refused.code, 'ETCDKIT_SEMAPHORE_LIMIT');
  const queue = await queueKeys(client, name);
  assert.equal(queue.length, 2, 'nothing written');
  // The head leaves; the waiter, now the head, still speaks for limit 3.
  await three.release();
  const held = await waiting.promise;
  await assert.rejects(five.acquire(), SemaphoreLimitError);
  await held.release();
  await expectQueue(client, name, []);
  // An idle semaphore takes whichever limit comes first.
  const first = await five.acquire({ permits: 5 });
  await assert.rejects(new Semaphore(client, name, 3).acquire(), (err: unknown) => {
    assert.ok(err instanceof SemaphoreLimitError);
    assert.equal(err.queuedLimit, 5);
    return true;
  });
  await first.release();
});

test('contenders with two limits racing into an idle semaphore: one limit wins, the other is refused', async () => {
  const clients = [connect(), connect(), connect(), connect()];
  for (let round = 0; round < 5; round++) {
    const name = semName(`race${round}`);
    // Four contenders of each limit, one permit each: all of the first limit to
    // join fit, so every acquire settles.
    const results = await Promise.allSettled(
      clients.flatMap((client, i) =>
        [0, 1].map(() => new Semaphore(client, name, i % 2 === 0 ? 4 : 5).acquire()),
      ),
    );
    const held = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    for (const err of refused) assert.ok(err instanceof SemaphoreLimitError, String(err));
    assert.equal(held.length, 4, 'the four of the first limit hold');
    assert.equal(refused.length, 4, 'the four of the other are refused');
    const listed = await new Semaphore(clients[0]!, name, 1).list();
    assert.equal(listed.length, 4);
    assert.equal(new Set(listed.map((e) => e.limit)).size, 1, 'one limit in the queue');
    for (const err of refused) assert.notEqual(err.limit, listed[0]!.limit);
    for (const lock of held) await lock.release();
    await expectQueue(clients[0]!, name, []);
  }
  await Promise.all(clients.map((c) => c.close()));
});

test('list() reports holders and waiters with permits, token, lease and limit', async () => {
  await using client = connect();
  const sessions: Session[] = await Promise.all([0, 1, 2, 3].map(() => client.session()));
  const name = semName('list');
  const semaphore = (i: number) => new Semaphore(sessions[i]!, name, 4);
  assert.deepEqual(await semaphore(0).list(), []);
  const a = await semaphore(0).acquire({ permits: 2 });
  const b = await semaphore(1).acquire({ permits: 2 });
  const c = track(semaphore(2).acquire({ permits: 3 }));
  await expectQueueLength(client, name, 3);
  const d = track(semaphore(3).acquire());
  const queue = await expectQueueLength(client, name, 4);
  const listed = await semaphore(0).list();
  assert.deepEqual(
    listed.map(({ key, permits, limit, token, lease, holds }) => ({
      key,
      permits,
      limit,
      token,
      lease,
      holds,
    })),
    [
      { key: a.key, permits: 2, limit: 4, token: a.token, lease: sessions[0]!.lease, holds: true },
      { key: b.key, permits: 2, limit: 4, token: b.token, lease: sessions[1]!.lease, holds: true },
      {
        key: queue[2]!.key,
        permits: 3,
        limit: 4,
        token: queue[2]!.createRevision,
        lease: sessions[2]!.lease,
        holds: false,
      },
      {
        key: queue[3]!.key,
        permits: 1,
        limit: 4,
        token: queue[3]!.createRevision,
        lease: sessions[3]!.lease,
        holds: false,
      },
    ],
  );
  await a.release();
  await b.release();
  const cHeld = await c.promise;
  assert.equal(cHeld.token, queue[2]!.createRevision);
  const dHeld = await d.promise;
  assert.deepEqual(
    (await semaphore(0).list()).map((e) => [e.key, e.holds]),
    [
      [cHeld.key, true],
      [dHeld.key, true],
    ],
  );
  await cHeld.release();
  await dHeld.release();
  await Promise.all(sessions.map((s) => s.close()));
});

test('a queue key without a claim (an earlier version, etcdctl) counts as one permit', async () => {
  await using client = connect();
  const name = semName('legacy');
  const lease = await client.grant(30);
  await client
    .txn()
    .success(Op.putRaw(`${name}/legacy`, '', { lease: lease.id }))
    .commit();
  const semaphore = new Semaphore(client, name, 2);
  const one = await semaphore.acquire();
  const two = track(semaphore.acquire());
  await expectQueueLength(client, name, 3);
  assert.deepEqual(
    (await semaphore.list()).map((e) => [e.permits, e.limit, e.holds]),
    [
      [1, undefined, true],
      [1, 2, true],
      [1, 2, false],
    ],
  );
  await client.revoke(lease.id);
  await (await two.promise).release();
  await one.release();
});
