// Giving up is prompt: an acquire whose caller's timeout passes, or whose
// caller aborts, rejects then, even when etcd hangs. The clean-up of its queue
// key goes on in the background. The bound checked is the client's own call
// deadline, set far above the caller's timeout: before, the give-up waited for
// a clean-up call under that deadline.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { Etcd, TimeoutError } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { LockTimeoutError, Mutex, RWMutex, Semaphore } from '@etcdkit/mutex';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

/** The client's call deadline: a give-up that waited for a call to etcd would take this long. */
const CLIENT_TIMEOUT = 30_000;
const CALLER_TIMEOUT = 800;

/** Runs `give` with etcd frozen once `ready` resolves; returns how long `give` took to reject and with what. */
async function rejectsWhileHung(
  ready: () => Promise<void>,
  give: () => Promise<unknown>,
): Promise<{ ms: number; error: unknown }> {
  const member = etcd.members[0]!;
  await ready();
  member.pause();
  try {
    const started = performance.now();
    const error = await give().then(
      () => new Error('resolved'),
      (err: unknown) => err,
    );
    return { ms: performance.now() - started, error };
  } finally {
    member.resume();
  }
}

/** A holder's client with `res` held by `hold`, and a waiter's client whose call deadline is CLIENT_TIMEOUT. */
async function heldBy(hold: (client: Etcd, name: string) => Promise<unknown>) {
  const keyPrefix = uniquePrefix('give-up');
  const holder = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
  const waiter = new Etcd({ endpoints: etcd.endpoint, keyPrefix, timeout: CLIENT_TIMEOUT });
  await hold(holder, 'res');
  return {
    holder,
    waiter,
    [Symbol.asyncDispose]: () =>
      Promise.all([holder.close(), waiter.close()]).then(() => undefined),
  };
}

describe('acquires give up promptly while etcd hangs', () => {
  const cases: Array<{
    what: string;
    acquire: (
      client: Etcd,
      name: string,
      options: { timeout?: number; signal?: AbortSignal },
    ) => Promise<unknown>;
    hold: (client: Etcd, name: string) => Promise<unknown>;
    timeoutError: new (...args: never[]) => Error;
  }> = [
    {
      what: 'Mutex.lock',
      acquire: (c, n, o) => new Mutex(c, n).lock(o),
      hold: (c, n) => new Mutex(c, n).lock(),
      timeoutError: LockTimeoutError,
    },
    {
      what: 'RWMutex.writeLock',
      acquire: (c, n, o) => new RWMutex(c, n).writeLock(o),
      hold: (c, n) => new RWMutex(c, n).readLock(),
      timeoutError: LockTimeoutError,
    },
    {
      what: 'RWMutex.readLock',
      acquire: (c, n, o) => new RWMutex(c, n).readLock(o),
      hold: (c, n) => new RWMutex(c, n).writeLock(),
      timeoutError: LockTimeoutError,
    },
    {
      what: 'Semaphore.acquire',
      acquire: (c, n, o) => new Semaphore(c, n, 1).acquire(o),
      hold: (c, n) => new Semaphore(c, n, 1).acquire(),
      timeoutError: LockTimeoutError,
    },
    {
      what: 'Election.campaign',
      acquire: (c, n, o) => new Election(c, n).campaign('me', o),
      hold: (c, n) => new Election(c, n).campaign('leader'),
      timeoutError: TimeoutError,
    },
  ];

  for (const { what, acquire, hold, timeoutError } of cases) {
    test(`${what}: a timeout passing while etcd hangs rejects then, not at the client's deadline`, async () => {
      await using clients = await heldBy(hold);
      const { waiter } = clients;
      await waiter.sharedSession();
      const { ms, error } = await rejectsWhileHung(
        async () => undefined,
        () => acquire(waiter, 'res', { timeout: CALLER_TIMEOUT }),
      );
      assert.ok(error instanceof timeoutError, String(error));
      assert.ok(ms < CLIENT_TIMEOUT, `gave up after ${Math.round(ms)} ms`);
    });

    test(`${what}: an abort while waiting and etcd hangs rejects with the reason at once`, async () => {
      await using clients = await heldBy(hold);
      const { holder, waiter } = clients;
      const controller = new AbortController();
      let pending: Promise<unknown> | undefined;
      const reason = new Error('shutting down');
      const { ms, error } = await rejectsWhileHung(
        async () => {
          pending = acquire(waiter, 'res', { signal: controller.signal });
          pending.catch(() => undefined);
          // Queued: two keys under the name, the holder's and the waiter's.
          await eventually(async () =>
            assert.equal((await holder.readdir('res/', { countOnly: true })).count >= 2, true),
          );
        },
        () => {
          setTimeout(() => controller.abort(reason), 100);
          return pending!;
        },
      );
      assert.equal(error, reason);
      assert.ok(ms < CLIENT_TIMEOUT, `gave up after ${Math.round(ms)} ms`);
      // Once etcd answers again, the waiter's place is given up in the background.
      await eventually(async () =>
        assert.equal((await holder.readdir('res/', { countOnly: true })).count, 1),
      );
    });
  }
});

describe('tryLock gives up promptly while etcd hangs', () => {
  test('an abort while its one txn hangs rejects with the reason at once; a key it made is deleted', async () => {
    await using clients = await heldBy((c, n) => new Mutex(c, n).lock());
    const { holder, waiter } = clients;
    await waiter.sharedSession();
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const { ms, error } = await rejectsWhileHung(
      async () => undefined,
      () => {
        setTimeout(() => controller.abort(reason), 100);
        return new Mutex(waiter, 'res').tryLock({ signal: controller.signal });
      },
    );
    assert.equal(error, reason);
    assert.ok(ms < CLIENT_TIMEOUT, `gave up after ${Math.round(ms)} ms`);
    // The txn reaches etcd once it runs again; whatever key it made is deleted in the background.
    await eventually(async () =>
      assert.equal((await holder.readdir('res/', { countOnly: true })).count, 1),
    );
  });

  test('a timeout passing while its one txn hangs rejects then, not at the client deadline', async () => {
    await using clients = await heldBy((c, n) => new Mutex(c, n).lock());
    const { holder, waiter } = clients;
    await waiter.sharedSession();
    const { ms, error } = await rejectsWhileHung(
      async () => undefined,
      () => new Mutex(waiter, 'res').tryLock({ timeout: CALLER_TIMEOUT }),
    );
    assert.ok(error instanceof LockTimeoutError, String(error));
    assert.ok(ms < CLIENT_TIMEOUT, `gave up after ${Math.round(ms)} ms`);
    await eventually(async () =>
      assert.equal((await holder.readdir('res/', { countOnly: true })).count, 1),
    );
  });
});

describe('a queue place given up is deleted even when the first try fails', () => {
  test('the waiter key is deleted once etcd is reachable again, while its session lives', async () => {
    await using proxy = await startProxy(etcd.endpoint);
    const keyPrefix = uniquePrefix('leave');
    await using holderClient = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using waiterClient = new Etcd({ endpoints: proxy.url, keyPrefix });
    const holder = await new Mutex(holderClient, 'res').lock();
    const session = await waiterClient.session({ ttl: 60 });
    const waiting = new Mutex(session, 'res').lock({ timeout: 1_500 });
    waiting.catch(() => undefined);
    await eventually(async () =>
      assert.equal((await holderClient.readdir('res/', { countOnly: true })).count, 2),
    );
    // The waiter gives up while its link is dark: the first delete cannot get through.
    await proxy.blackhole();
    await assert.rejects(waiting, LockTimeoutError);
    // Longer than one delete try is allowed to take (5 s), so the first one fails.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    assert.equal((await holderClient.readdir('res/', { countOnly: true })).count, 2);
    await proxy.pass();
    // A key left on a live lease would block the queue for good: it must go.
    await eventually(
      async () => assert.equal((await holderClient.readdir('res/', { countOnly: true })).count, 1),
      { timeout: 15_000 },
    );
    assert.equal(session.alive, true);
    await holder.release();
  });
});
