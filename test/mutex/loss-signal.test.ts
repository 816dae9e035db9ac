// The loss signal comes first: over many hand-offs forced by delayed and then
// swallowed keepalive answers, every holder's `signal` aborts before the next
// holder acquires. Both run in this process, so one monotonic clock orders them.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, type Session } from '@etcdkit/client';
import { Election, type Leadership } from '@etcdkit/election';
import {
  type EtcdCluster,
  eventually,
  type FaultProxy,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { type Lock, Mutex, RWMutex, Semaphore } from '@etcdkit/mutex';

let etcd: EtcdCluster;
let proxy: FaultProxy;
before(async () => {
  etcd = await startEtcd();
  proxy = await startProxy(etcd.endpoint);
});
after(async () => {
  await proxy?.close();
  await etcd?.close();
});

/**
 * The keepalive socket is cut right after a renewal; its replacement opens at
 * once and sends, and from then on answers come back 800 ms late, past the
 * overdue threshold (TTL 2 s: 667 ms), while the socket is younger than a
 * second, so the session keeps it and may send again. The link goes dark at a
 * different moment each round: a request sent after that never reaches etcd,
 * while the older answer still arrives. Crediting it to the newer send would
 * overstate the lease.
 */
const ANSWER_DELAY = 800;
const DARK_AFTER = [150, 250, 350, 450, 550, 650, 200, 300, 400, 500];

test('every holder learns of its loss before the next holder acquires', async (t) => {
  const keyPrefix = uniquePrefix('loss-first');
  await using holderClient = new Etcd({ endpoints: proxy.url, keyPrefix, timeout: 3_000 });
  await using waiterClient = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
  const lines: string[] = [];
  for (const [round, dark] of DARK_AFTER.entries()) {
    await proxy.pass();
    const session = await holderClient.session({ ttl: 2 });
    const held = await new Mutex(session, 'job').lock();
    let abortedAt: number | undefined;
    held.signal.addEventListener('abort', () => {
      abortedAt = performance.now();
    });
    let acquiredAt: number | undefined;
    const next = new Mutex(waiterClient, 'job').lock().then((lock) => {
      acquiredAt = performance.now();
      return lock;
    });
    await new Promise((resolve) => session.once('renewed', resolve));
    await proxy.delay(ANSWER_DELAY, 'frames');
    proxy.cut();
    await sleep(dark);
    await proxy.blackhole();
    const lock = await next;
    await eventually(() => assert.ok(abortedAt !== undefined, 'the holder was told'), {
      timeout: 10_000,
    });
    lines.push(
      `round ${round} (dark after ${dark} ms): holder told ${Math.round(acquiredAt! - abortedAt!)} ms before the next acquired`,
    );
    assert.ok(
      abortedAt! <= acquiredAt!,
      `round ${round}: the holder's signal aborted ${Math.round(abortedAt! - acquiredAt!)} ms after the next holder acquired`,
    );
    await lock.release();
    await proxy.pass();
    await session.close().catch(() => undefined);
  }
  for (const line of lines) t.diagnostic(line);
});

/** What the outside-delete cases need of a lock or a leadership. */
interface Holder {
  key: string;
  lease: bigint;
  signal: AbortSignal;
  holds(): boolean;
  onLost(listener: (err: Error) => void): void;
  release(): Promise<void>;
}

function fromLock(lock: Lock): Holder {
  return {
    key: lock.key,
    lease: lock.session.lease,
    signal: lock.signal,
    holds: () => lock.held,
    onLost: (listener) => lock.on('lost', listener),
    release: () => lock.release(),
  };
}

function fromLeadership(leadership: Leadership): Holder {
  return {
    key: leadership.key,
    lease: leadership.lease,
    signal: leadership.signal,
    holds: () => leadership.leading,
    onLost: (listener) => leadership.on('lost', listener),
    release: () => leadership.resign(),
  };
}

describe('a holder whose key is deleted from outside is told at once', () => {
  const kinds: Array<{
    what: string;
    hold: (session: Session, name: string) => Promise<Holder>;
    /** The next in line: the same kind of acquire unless that would share the hold. */
    next: (session: Session, name: string) => Promise<Holder>;
  }> = [
    {
      what: 'Mutex',
      hold: async (c, n) => fromLock(await new Mutex(c, n).lock()),
      next: async (c, n) => fromLock(await new Mutex(c, n).lock()),
    },
    {
      what: 'RWMutex writer',
      hold: async (c, n) => fromLock(await new RWMutex(c, n).writeLock()),
      next: async (c, n) => fromLock(await new RWMutex(c, n).writeLock()),
    },
    {
      // Readers share the lock: the one kept out is a writer.
      what: 'RWMutex reader',
      hold: async (c, n) => fromLock(await new RWMutex(c, n).readLock()),
      next: async (c, n) => fromLock(await new RWMutex(c, n).writeLock()),
    },
    {
      what: 'Semaphore holder',
      hold: async (c, n) => fromLock(await new Semaphore(c, n, 1).acquire()),
      next: async (c, n) => fromLock(await new Semaphore(c, n, 1).acquire()),
    },
    {
      what: 'Leadership',
      hold: async (c, n) => fromLeadership(await new Election(c, n).campaign('first')),
      next: async (c, n) => fromLeadership(await new Election(c, n).campaign('second')),
    },
  ];
  for (const { what, hold, next: nextInLine } of kinds) {
    for (const how of ['key deleted', 'lease revoked'] as const) {
      test(`${what}, ${how}: signal aborts no later than the next holder acquires`, async () => {
        const keyPrefix = uniquePrefix('own-key');
        // Holder and next in line share a client, and so one watch of the
        // queue: both see the delete in the same dispatch, which orders them
        // without a race between two streams. Each has a session of its own,
        // so revoking the holder's lease leaves the next one's alone.
        await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
        await using operator = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
        const holderSession = await client.session();
        const nextSession = await client.session();
        const held = await hold(holderSession, 'res');
        const lost: Error[] = [];
        held.onLost((err) => lost.push(err));
        let abortedAt: number | undefined;
        held.signal.addEventListener('abort', () => {
          abortedAt = performance.now();
        });
        let acquiredAt: number | undefined;
        const next = nextInLine(nextSession, 'res').then((holder) => {
          acquiredAt = performance.now();
          return holder;
        });
        await eventually(async () =>
          assert.ok((await operator.readdir('res/', { countOnly: true })).count >= 2),
        );
        if (how === 'key deleted') await operator.delete(held.key);
        else await operator.revoke(held.lease);
        const successor = await next;
        await eventually(() => assert.ok(abortedAt !== undefined, 'the holder was told'));
        assert.ok(
          abortedAt! <= acquiredAt!,
          `aborted ${Math.round(abortedAt! - acquiredAt!)} ms after the next holder acquired`,
        );
        assert.equal(held.holds(), false);
        assert.equal(lost.length, 1);
        await successor.release();
      });
    }
  }
});

describe('suspended before lost', () => {
  test('a session, its lock and its leadership are suspended while an answer is overdue, then resumed or lost', async () => {
    const keyPrefix = uniquePrefix('suspend');
    await proxy.pass();
    await using client = new Etcd({ endpoints: proxy.url, keyPrefix, timeout: 3_000 });
    const session = await client.session({ ttl: 3 });
    const lock = await new Mutex(session, 'job').lock();
    const leadership = await new Election(session, 'boss').campaign('me');
    const seen: string[] = [];
    for (const [who, emitter] of [
      ['session', session],
      ['lock', lock],
      ['leadership', leadership],
    ] as const) {
      for (const event of ['suspended', 'resumed', 'lost'] as const) {
        (emitter as unknown as { on(e: string, f: () => void): void }).on(event, () =>
          seen.push(`${who} ${event}`),
        );
      }
    }
    try {
      // Answers late by more than the overdue threshold (TTL 3 s: 1 s), but well within the TTL.
      await proxy.delay(1_300, 'frames');
      await eventually(() => assert.ok(seen.includes('session suspended')), { timeout: 10_000 });
      assert.ok(lock.suspended && leadership.suspended);
      await proxy.pass();
      await eventually(() => assert.ok(seen.includes('session resumed')), { timeout: 10_000 });
      assert.equal(session.state, 'alive');
      assert.ok(lock.held && leadership.leading);
      // Then no answers at all: suspended again, then lost.
      await proxy.blackhole();
      await eventually(() => assert.ok(seen.includes('session lost')), { timeout: 10_000 });
      for (const who of ['session', 'lock', 'leadership']) {
        assert.ok(seen.includes(`${who} suspended`), `${who} was suspended: ${seen.join(', ')}`);
        assert.ok(seen.includes(`${who} lost`), `${who} was lost: ${seen.join(', ')}`);
        assert.ok(
          seen.lastIndexOf(`${who} suspended`) < seen.indexOf(`${who} lost`),
          `${who}: suspended before lost: ${seen.join(', ')}`,
        );
      }
    } finally {
      await proxy.pass();
    }
  });
});
