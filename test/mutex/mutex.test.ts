// Mutex against one real etcd member: keys and tokens, FIFO, tryLock, fencing
// guards, clean-up after abort and timeout, lost sessions, and the errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Etcd,
  EtcdError,
  InvalidArgumentError,
  Op,
  type Session,
  SessionExpiredError,
} from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import {
  type Lock,
  LockLostError,
  LockNotHeldError,
  LockTakenError,
  LockTimeoutError,
  Mutex,
  RWMutex,
  Semaphore,
} from '@etcdkit/mutex';
import {
  assertIncreasing,
  expectQueue,
  expectQueueLength,
  expectWatchers,
  Holders,
  queueKeys,
  since,
  TcpProxy,
  track,
} from './helpers.js';

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

function lockName(label: string): string {
  return `${uniquePrefix('mutex')}${label}`;
}

const hex = (session: Session): string => session.lease.toString(16);

/** Fencing checks: does a txn guarded by `lock.guard()` still commit? */
async function guardHolds(client: Etcd, lock: Lock, key: string, value: string): Promise<boolean> {
  const r = await client.txn().if(lock.guard()).success(Op.put(key, value)).commit();
  return r.succeeded;
}

describe('keys and tokens', () => {
  test('a lock is the key <name>/<lease in hex> on the session lease, as etcdctl names it', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 30 });
    const name = lockName('job');
    const mutex = new Mutex(session, name);
    assert.equal(mutex.name, name);
    const lock = await mutex.lock();
    assert.equal(lock.key, `${name}/${hex(session)}`);
    assert.equal(lock.session, session);
    assert.equal(lock.held, true);
    assert.equal(lock.signal.aborted, false);
    const kv = await client.get(lock.key);
    assert.ok(kv, 'the owner key exists');
    assert.equal(kv.createRevision, lock.token, 'the token is the key create revision');
    assert.equal(kv.lease, session.lease, 'the key lives on the session lease');
    assert.equal(kv.valueBytes.length, 0, 'an empty value, as etcdctl stores');
    await lock.release();
    assert.equal(await client.get(lock.key), undefined);
    assert.equal(lock.held, false);
    assert.equal(lock.signal.aborted, true);
  });

  test('a client locks with its shared session', async () => {
    await using client = connect();
    const name = lockName('shared');
    const lock = await new Mutex(client, name).lock();
    const shared = await client.sharedSession();
    assert.equal(lock.session, shared);
    assert.equal(lock.key, `${name}/${hex(shared)}`);
    // A second Mutex object on the same client queues behind the first: same lease, own key.
    const second = track(new Mutex(client, name).lock());
    const [, waiting] = await expectQueueLength(client, name, 2);
    assert.equal(waiting?.key, `${name}/${hex(shared)}_1`);
    assert.equal(waiting?.lease, shared.lease);
    assert.equal(second.settled, false);
    await lock.release();
    const next = await second.promise;
    assert.equal(next.key, `${name}/${hex(shared)}_1`);
    assert.ok(next.token > lock.token);
    await next.release();
    await expectQueue(client, name, []);
  });

  test('contenders are served in FIFO order and tokens strictly increase from holder to holder', async (t) => {
    await using client = connect();
    await expectWatchers(etcd.endpoint, 0);
    const sessions = await Promise.all([1, 2, 3].map(() => client.session({ ttl: 30 })));
    const name = lockName('fifo');
    const holders = new Holders((_kind, held) => held.length === 0);
    const first = await new Mutex(sessions[0]!, name).lock();
    holders.acquired('first', 'x');
    // Contenders join one after the other: their own sessions, the first session again, and
    // the client's shared session.
    const targets = [sessions[1]!, sessions[2]!, sessions[0]!, client];
    const waiting: Array<{ id: string; lock: Promise<Lock> }> = [];
    for (const [i, target] of targets.entries()) {
      const id = `c${i}`;
      const lock = new Mutex(target, name).lock().then((l) => {
        holders.acquired(id, 'x');
        return l;
      });
      waiting.push({ id, lock });
      await expectQueueLength(client, name, i + 2);
    }
    // Every contender waits on the client's one view of the queue.
    await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
    const queued = await queueKeys(client, name);
    const locks: Lock[] = [first];
    holders.releasing('first');
    const start = performance.now();
    await first.release();
    for (const { id, lock } of waiting) {
      const held = await lock;
      locks.push(held);
      holders.releasing(id);
      await held.release();
    }
    t.diagnostic(`${targets.length} hand-overs in ${since(start)} ms`);
    assert.deepEqual(holders.violations, []);
    assert.deepEqual(holders.order, ['first', 'c0', 'c1', 'c2', 'c3']);
    assert.deepEqual(
      locks.map((l) => l.key),
      queued.map((k) => k.key),
      'served in the order of the queue',
    );
    assertIncreasing(locks.map((l) => l.token));
    assert.deepEqual(
      locks.map((l) => l.token),
      queued.map((k) => k.createRevision),
    );
    await expectQueue(client, name, []);
    await Promise.all(sessions.map((s) => s.close()));
  });
});

describe('tryLock', () => {
  test('takes a free lock; on a held one rejects at once with the holder, leaving nothing behind', async () => {
    await using client = connect();
    await using mine = await client.session({ ttl: 30 });
    await using other = await client.session({ ttl: 30 });
    const name = lockName('try');
    const held = await new Mutex(mine, name).tryLock();
    assert.equal(held.key, `${name}/${hex(mine)}`);
    for (const session of [other, mine]) {
      const err = await new Mutex(session, name).tryLock().then(
        () => assert.fail('tryLock must not take a held lock'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof LockTakenError, String(err));
      assert.ok(err instanceof EtcdError);
      assert.equal(err.name, 'LockTakenError');
      assert.equal(err.code, 'ETCDKIT_LOCK_TAKEN');
      assert.equal(err.holder, held.key);
      assert.equal(err.holderToken, held.token);
      assert.match(err.message, new RegExp(held.key));
      await expectQueue(client, name, [held.key]);
    }
    await held.release();
    const next = await new Mutex(other, name).tryLock();
    assert.ok(next.token > held.token);
    await next.release();
    await expectQueue(client, name, []);
  });
});

describe('fencing', () => {
  test('guard() lets a txn commit while the lock is held and not after, even when its key is re-created', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 30 });
    const name = lockName('guard');
    const resource = `${name}-resource`;
    const mutex = new Mutex(session, name);
    const first = await mutex.lock();
    assert.equal(await guardHolds(client, first, resource, 'first'), true);
    await first.release();
    assert.equal(await guardHolds(client, first, resource, 'late'), false);
    // The same session takes the lock again: the same key name, a new create revision.
    const second = await mutex.lock();
    assert.equal(second.key, first.key);
    assert.ok(second.token > first.token);
    assert.equal(await guardHolds(client, first, resource, 'stale'), false);
    assert.equal(await guardHolds(client, second, resource, 'second'), true);
    assert.equal((await client.get(resource))?.value, 'second');
    await second.release();
    const guard = second.guard();
    assert.equal(guard.target, 'createRevision');
    assert.equal(guard.key, second.key);
    assert.equal(guard.operand, second.token);
  });
});

describe('giving up a wait', () => {
  test('an abort rejects with the reason and deletes the key; the next in line then waits for the one before', async () => {
    await using client = connect();
    await expectWatchers(etcd.endpoint, 0);
    const sessions = await Promise.all([1, 2, 3].map(() => client.session({ ttl: 30 })));
    const name = lockName('abort');
    const holder = await new Mutex(sessions[0]!, name).lock();
    const controller = new AbortController();
    const aborted = track(new Mutex(sessions[1]!, name).lock({ signal: controller.signal }));
    await expectQueueLength(client, name, 2);
    const behind = track(new Mutex(sessions[2]!, name).lock());
    const keys = await expectQueueLength(client, name, 3);
    await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
    const reason = new Error('no longer needed');
    controller.abort(reason);
    await assert.rejects(aborted.promise, (err) => err === reason);
    await expectQueue(client, name, [keys[0]!.key, keys[2]!.key]);
    // The last contender was behind the aborted key; now it must wait for the holder.
    assert.equal(behind.settled, false);
    await holder.release();
    const next = await behind.promise;
    assert.equal(next.key, keys[2]!.key);
    await next.release();
    await expectQueue(client, name, []);
    await Promise.all(sessions.map((s) => s.close()));
  });

  test('an already aborted signal rejects before joining the queue', async () => {
    await using client = connect();
    const name = lockName('pre-abort');
    const reason = new Error('never mind');
    await assert.rejects(
      new Mutex(client, name).lock({ signal: AbortSignal.abort(reason) }),
      (err) => err === reason,
    );
    await expectQueue(client, name, []);
  });

  test('a timeout rejects with LockTimeoutError and deletes the key', async (t) => {
    await using client = connect();
    await using other = await client.session({ ttl: 30 });
    const name = lockName('timeout');
    const holder = await new Mutex(client, name).lock();
    const start = performance.now();
    const err = await new Mutex(other, name).lock({ timeout: 300 }).then(
      () => assert.fail('the lock is held'),
      (e: unknown) => e,
    );
    t.diagnostic(`lock({ timeout: 300 }) rejected after ${since(start)} ms`);
    assert.ok(err instanceof LockTimeoutError, String(err));
    assert.equal(err.code, 'ETCDKIT_LOCK_TIMEOUT');
    await expectQueue(client, name, [holder.key]);
    await holder.release();
    // A timeout that is not reached changes nothing.
    const free = await new Mutex(other, name).lock({ timeout: 60_000 });
    await free.release();
    await expectQueue(client, name, []);
  });
});

describe('release', () => {
  test('releasing twice is a no-op and never releases the next holder', async () => {
    await using client = connect();
    await using other = await client.session({ ttl: 30 });
    const name = lockName('twice');
    const first = await new Mutex(client, name).lock();
    const second = track(new Mutex(other, name).lock());
    await expectQueueLength(client, name, 2);
    await first.release();
    const next = await second.promise;
    await first.release();
    await first.unlock();
    await first[Symbol.asyncDispose]();
    assert.equal(next.held, true);
    await expectQueue(client, name, [next.key]);
    await next.release();
    await expectQueue(client, name, []);
  });

  test('unlock() releases the lock the Mutex took last, and rejects with LockNotHeldError when it holds none', async () => {
    await using client = connect();
    const name = lockName('unlock');
    const mutex = new Mutex(client, name);
    const err = await mutex.unlock().then(
      () => assert.fail('nothing is held'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LockNotHeldError, String(err));
    assert.equal(err.code, 'ETCDKIT_LOCK_NOT_HELD');
    const lock = await mutex.lock();
    await mutex.unlock();
    assert.equal(lock.held, false);
    await expectQueue(client, name, []);
    await assert.rejects(mutex.unlock(), LockNotHeldError);
  });

  test('a release that failed while etcd was unreachable can be retried, and frees the lock', async () => {
    await using proxy = await TcpProxy.start(etcd.endpoint);
    await using direct = connect();
    await using client = new Etcd({ endpoints: proxy.url, timeout: 1_000 });
    await using session = await client.session({ ttl: 30 });
    const name = lockName('failed-release');
    const lock = await new Mutex(session, name).lock();
    await proxy.cut();
    const err = await lock.release().then(
      () => assert.fail('etcd is unreachable'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof EtcdError && !(err instanceof LockNotHeldError), String(err));
    // The key is still in etcd, on a live session: nobody else can get the lock.
    await expectQueue(direct, name, [lock.key]);
    await proxy.open();
    // Go's Unlock may simply be called again; so must release() be.
    await lock.release();
    await expectQueue(direct, name, []);
  });

  test('after a release that failed, the next holder still gets a higher token', async () => {
    await using proxy = await TcpProxy.start(etcd.endpoint);
    await using client = new Etcd({ endpoints: proxy.url, timeout: 1_000 });
    await using session = await client.session({ ttl: 30 });
    const name = lockName('token-after-failed-release');
    const first = await new Mutex(session, name).lock();
    await proxy.cut();
    await assert.rejects(first.release());
    await proxy.open();
    assert.equal(first.held, false, 'the first holder no longer counts on the lock');
    // Another contender of the same process, as a worker's next loop would be.
    const second = await new Mutex(session, name).lock({ timeout: 5_000 });
    assert.ok(
      second.token > first.token,
      `the next holder's token (${second.token}) must exceed the last one's (${first.token})`,
    );
    await second.release();
  });

  test('await using releases at the end of the block', async () => {
    await using client = connect();
    const name = lockName('using');
    let key = '';
    {
      await using lock = await new Mutex(client, name).lock();
      key = lock.key;
      await expectQueue(client, name, [key]);
    }
    await expectQueue(client, name, []);
  });
});

describe('a lost session', () => {
  test('release after the lease was revoked from outside rejects with LockNotHeldError', async () => {
    await using client = connect();
    const session = await client.session({ ttl: 30 });
    const name = lockName('revoked');
    const mutex = new Mutex(session, name);
    const lock = await mutex.lock();
    await client.revoke(session.lease);
    const err = await lock.release().then(
      () => assert.fail('the lock was lost'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LockNotHeldError, String(err));
    assert.equal(lock.held, false);
    // Disposing a lost lock is not an error.
    await lock[Symbol.asyncDispose]();
    await expectQueue(client, name, []);
    await session.close();
  });

  test('Lock.signal aborts with SessionExpiredError when the lease is lost; later locks reject', async (t) => {
    await using client = connect();
    const session = await client.session({ ttl: 3 });
    const name = lockName('lost');
    const mutex = new Mutex(session, name);
    const lock = await mutex.lock();
    const start = performance.now();
    await client.revoke(session.lease);
    await eventually(() => assert.equal(lock.signal.aborted, true), { timeout: 15_000 });
    t.diagnostic(`lock.signal aborted ${since(start)} ms after the lease was revoked`);
    // The revoke deletes the key: whichever is seen first, the session's loss or the key's delete.
    assert.ok(
      lock.signal.reason instanceof SessionExpiredError ||
        lock.signal.reason instanceof LockLostError,
      String(lock.signal.reason),
    );
    assert.equal(lock.held, false);
    await eventually(() => assert.equal(session.alive, false));
    assert.equal(await guardHolds(client, lock, `${name}-resource`, 'x'), false);
    // The Mutex forgets a lost lock: there is nothing for it to unlock.
    await assert.rejects(mutex.unlock(), LockNotHeldError);
    await assert.rejects(lock.release(), LockNotHeldError);
    await assert.rejects(mutex.lock(), SessionExpiredError);
    await assert.rejects(mutex.tryLock(), SessionExpiredError);
    await expectQueue(client, name, []);
    await session.close();
  });

  test('closing the session ends its lock: signal aborts, the key is gone', async () => {
    await using client = connect();
    const session = await client.session({ ttl: 30 });
    const name = lockName('closed-holder');
    const lock = await new Mutex(session, name).lock();
    await session.close();
    assert.equal(lock.signal.aborted, true);
    assert.ok(lock.signal.reason instanceof SessionExpiredError);
    await expectQueue(client, name, []);
    await lock[Symbol.asyncDispose]();
  });

  test('lock on a closed session rejects with SessionExpiredError and creates no key', async () => {
    await using client = connect();
    const session = await client.session({ ttl: 30 });
    await session.close();
    const name = lockName('closed');
    const mutex = new Mutex(session, name);
    const err = await mutex.lock().then(
      () => assert.fail('the session is closed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SessionExpiredError, String(err));
    assert.equal(err.code, 'ETCDKIT_SESSION_EXPIRED');
    await assert.rejects(mutex.tryLock(), SessionExpiredError);
    await assert.rejects(new RWMutex(session, name).readLock(), SessionExpiredError);
    await assert.rejects(new Semaphore(session, name, 2).acquire(), SessionExpiredError);
    await expectQueue(client, name, []);
  });

  test('a waiter whose lease is lost as its turn comes re-checks its key and never gets the lock', async () => {
    await using client = connect();
    await expectWatchers(etcd.endpoint, 0);
    const sessions = await Promise.all([1, 2, 3].map(() => client.session({ ttl: 30 })));
    const name = lockName('lost-waiter');
    const holder = await new Mutex(sessions[0]!, name).lock();
    const doomed = track(new Mutex(sessions[1]!, name).lock());
    await expectQueueLength(client, name, 2);
    const behind = track(new Mutex(sessions[2]!, name).lock());
    const keys = await expectQueueLength(client, name, 3);
    await expectWatchers(etcd.endpoint, 1); // the client's one view of the queue, for holders and waiters alike
    // The waiter's lease goes, and its predecessor leaves right after: whichever the waiter
    // sees first, it must find that its own key is gone rather than take the lock.
    await client.revoke(sessions[1]!.lease);
    await holder.release();
    await assert.rejects(doomed.promise, SessionExpiredError);
    const next = await behind.promise;
    assert.equal(next.key, keys[2]!.key);
    await next.release();
    await expectQueue(client, name, []);
    await Promise.all(sessions.map((s) => s.close()));
  });
});

describe('arguments', () => {
  test('a name that is empty or ends with the separator is refused', () => {
    const client = connect();
    for (const name of ['', 'jobs/', '/']) {
      assert.throws(() => new Mutex(client, name), InvalidArgumentError, JSON.stringify(name));
      assert.throws(() => new RWMutex(client, name), InvalidArgumentError, JSON.stringify(name));
      assert.throws(() => new Semaphore(client, name, 2), InvalidArgumentError);
    }
    assert.throws(() => new Mutex(client, undefined as unknown as string), InvalidArgumentError);
    assert.throws(() => new Mutex(client, ''), /non-empty/);
    assert.throws(() => new Mutex(client, 'jobs/'), /must not end with "\/"/);
    // A nested name is fine: only a trailing separator is refused.
    assert.equal(new Mutex(client, 'jobs/nightly').name, 'jobs/nightly');
    void client.close();
  });

  test('bad options reject (never throw) and create no key', async () => {
    await using client = connect();
    const name = lockName('options');
    const mutex = new Mutex(client, name);
    for (const options of [{ timeout: -1 }, { timeout: Number.NaN }, { wait: true }]) {
      let pending: Promise<Lock> | undefined;
      assert.doesNotThrow(() => {
        pending = mutex.lock(options as { timeout: number });
      });
      await assert.rejects(pending!, InvalidArgumentError, JSON.stringify(options));
    }
    await expectQueue(client, name, []);
  });
});
