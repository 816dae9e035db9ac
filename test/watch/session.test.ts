// Sessions against real etcd: one lease kept alive over the shared keepalive socket, loss
// detection (revoked, expired, unreachable), close, orphan, dispose, resume of a lease ID.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createClient,
  type Etcd,
  InvalidArgumentError,
  LeaseNotFoundError,
  type Session,
  SessionExpiredError,
} from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { labelledMetric, Recorder, since } from './support.js';
import { tcpProxy } from './tcp-proxy.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(label: string): Etcd<string> {
  return createClient({
    endpoints: etcd.endpoint,
    keyPrefix: uniquePrefix(label),
    codec: 'string',
    timeout: 3_000,
  });
}

/** Keepalive streams opened on the member so far. */
const keepaliveStreams = () =>
  labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
    grpc_method: 'LeaseKeepAlive',
    grpc_service: 'etcdserverpb.Lease',
  });

/** Records a session's events with their times. */
function observe(session: Session) {
  const seen = {
    renewed: [] as Array<{ ttl: number; at: number }>,
    lost: [] as Array<{ error: SessionExpiredError; at: number }>,
    closed: 0,
  };
  session.on('renewed', (ttl) => seen.renewed.push({ ttl, at: performance.now() }));
  session.on('lost', (error) => seen.lost.push({ error, at: performance.now() }));
  session.on('closed', () => seen.closed++);
  return seen;
}

describe('keepalive', () => {
  test('starts right after the grant, runs every TTL/3, and keeps the lease past its TTL', async (t) => {
    await using client = connect('keepalive');
    const started = performance.now();
    await using session = await client.session({ ttl: 3 });
    const seen = observe(session);
    assert.equal(typeof session.lease, 'bigint');
    assert.equal(session.ttl, 3);
    assert.equal(session.alive, true);
    assert.equal(session.signal.aborted, false);
    assert.ok(session.remaining > 0);
    // Wait past the TTL, with at least three renewals.
    await eventually(
      () =>
        assert.ok(
          since(started) > 4_000 && seen.renewed.length >= 3,
          `${seen.renewed.length} renewals`,
        ),
      { timeout: 20_000, interval: 100 },
    );
    const info = await client.timetolive(session.lease);
    assert.ok(info, 'the lease still exists after its TTL');
    assert.ok(info.ttl > 0);
    assert.ok(seen.renewed.every((r) => r.ttl === 3));
    assert.equal(seen.lost.length, 0);
    const intervals = seen.renewed.slice(1).map((r, i) => Math.round(r.at - seen.renewed[i]!.at));
    t.diagnostic(
      `first renewal ${Math.round(seen.renewed[0]!.at - started)} ms after session() was called; ` +
        `then every ${intervals.join(', ')} ms (TTL/3 = 1000 ms)`,
    );
  });

  test('every session of a client shares one keepalive socket', async () => {
    await using client = connect('shared');
    const before = await keepaliveStreams();
    const sessions = await Promise.all(Array.from({ length: 5 }, () => client.session({ ttl: 5 })));
    try {
      const seen = sessions.map(observe);
      await eventually(
        () =>
          assert.ok(
            seen.every((s) => s.renewed.length >= 1),
            'each renewed',
          ),
        {
          timeout: 10_000,
        },
      );
      assert.equal(new Set(sessions.map((s) => s.lease)).size, 5);
      assert.equal(client.socketStats.keepalive, 1);
      assert.equal(await keepaliveStreams(), before + 1, 'one keepalive stream on the server');
    } finally {
      for (const s of sessions) await s.close();
    }
  });
});

describe('loss', () => {
  test('a lease revoked from outside is detected as lost', async (t) => {
    await using client = connect('revoked');
    await using other = connect('revoker');
    await using session = await client.session({ ttl: 6 });
    const seen = observe(session);
    await client.set('owned', 'v', { lease: session.lease });
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    const revoked = performance.now();
    await other.revoke(session.lease);
    await eventually(() => assert.equal(seen.lost.length, 1, 'lost'), { timeout: 20_000 });
    const detected = Math.round(seen.lost[0]!.at - revoked);
    const { error } = seen.lost[0]!;
    assert.ok(error instanceof SessionExpiredError);
    assert.equal(error.code, 'ETCDKIT_SESSION_EXPIRED');
    assert.ok(error.cause instanceof LeaseNotFoundError, 'the cause says the lease is gone');
    assert.equal(session.alive, false);
    assert.equal(session.signal.aborted, true);
    assert.equal(session.signal.reason, error);
    assert.equal(session.remaining >= 0, true);
    assert.equal(await client.get('owned'), undefined, 'the leased key went with the lease');
    const renewalsAtLoss = seen.renewed.length;
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // one more keepalive period
    assert.equal(seen.renewed.length, renewalsAtLoss, 'no keepalive after the loss');
    assert.equal(seen.lost.length, 1, 'lost fires once');
    t.diagnostic(`revocation detected after ${detected} ms (TTL/3 = 2000 ms)`);
  });

  test('session.signal stops work that needs the lease, such as a watch', async () => {
    await using client = connect('signal');
    await using session = await client.session({ ttl: 6 });
    await using watcher = await client.watch('k', { signal: session.signal });
    const rec = new Recorder(watcher);
    await client.revoke(session.lease);
    const err = await rec.ended;
    assert.ok(err instanceof SessionExpiredError, String(err));
    assert.equal(watcher.ended, true);
  });

  test('the watchdog: a member that stops answering ends the session before the lease may expire', async (t) => {
    await using client = connect('watchdog');
    const session = await client.session({ ttl: 3 });
    const seen = observe(session);
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    const member = etcd.members[0]!;
    const paused = performance.now();
    member.pause();
    try {
      await eventually(() => assert.equal(seen.lost.length, 1, 'lost'), { timeout: 20_000 });
    } finally {
      member.resume();
    }
    await member.waitHealthy(30_000);
    const { error, at } = seen.lost[0]!;
    const lastRenewal = seen.renewed.at(-1)!.at;
    assert.ok(error instanceof SessionExpiredError);
    assert.match(error.message, /could not be renewed/);
    assert.equal(session.signal.aborted, true);
    assert.equal(session.alive, false);
    t.diagnostic(
      `lost ${Math.round(at - paused)} ms after SIGSTOP, ${Math.round(at - lastRenewal)} ms after the last ` +
        'renewal (TTL 3000 ms, safety margin 300 ms)',
    );
    await client.revoke(session.lease).catch(() => undefined);
    await session.close();
  });

  test('a session keeps its lease across a member restart shorter than the TTL', async (t) => {
    await using client = connect('restart');
    await using session = await client.session({ ttl: 10 });
    const seen = observe(session);
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    const renewalsBefore = seen.renewed.length;
    const lastBefore = seen.renewed.at(-1)!.at;
    const killed = performance.now();
    await etcd.members[0]!.restart();
    const healthy = since(killed);
    await eventually(
      () => assert.ok(seen.renewed.length > renewalsBefore, 'renewed after the restart'),
      {
        timeout: 20_000,
      },
    );
    const firstAfter = seen.renewed[renewalsBefore]!.at;
    assert.equal(seen.lost.length, 0, 'never lost');
    assert.equal(session.alive, true);
    assert.equal(session.signal.aborted, false);
    const info = await client.timetolive(session.lease);
    assert.ok(info && info.ttl > 0, 'the lease is still there');
    assert.ok(client.socketStats.keepalive >= 2, 'the keepalive socket was reopened');
    t.diagnostic(
      `member healthy ${healthy} ms after the kill; renewals paused for ${Math.round(firstAfter - lastBefore)} ms ` +
        `(TTL 10000 ms); ${client.socketStats.keepalive} keepalive sockets opened`,
    );
  });
  test('a session survives connection drops that happen while a keepalive is in flight', async (t) => {
    await using proxy = await tcpProxy(etcd.endpoint);
    await using client = createClient({
      endpoints: proxy.url,
      keyPrefix: uniquePrefix('in-flight'),
      codec: 'string',
      timeout: 3_000,
    });
    await using session = await client.session({ ttl: 6 });
    const seen = observe(session);
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    for (let round = 1; round <= 2; round++) {
      const renewals = seen.renewed.length;
      // Longer than one keepalive period (TTL/3), far shorter than the TTL: one keepalive
      // goes out and is never answered; then the connection breaks.
      proxy.blackhole(true);
      await new Promise((resolve) => setTimeout(resolve, 2_600));
      proxy.cut();
      proxy.blackhole(false);
      await eventually(
        () => assert.ok(seen.renewed.length > renewals || seen.lost.length > 0, 'renewed again'),
        { timeout: 15_000 },
      );
      const lost = seen.lost[0];
      if (lost) {
        const info = await client.timetolive(session.lease);
        const lastRenewal = seen.renewed.at(-1)!.at;
        assert.fail(
          `round ${round}: lost ("${lost.error.message}") ${Math.round(lost.at - lastRenewal)} ms ` +
            `after a renewal, while etcd still holds the lease with ${info?.ttl ?? 'no'} s left`,
        );
      }
    }
    const renewals = seen.renewed.length;
    await eventually(
      () => assert.ok(seen.renewed.length >= renewals + 2 || seen.lost.length > 0, 'renewing'),
      { timeout: 15_000 },
    );
    assert.deepEqual(
      seen.lost.map((l) => l.error.message),
      [],
      'never lost',
    );
    const info = await client.timetolive(session.lease);
    assert.ok(info && info.ttl > 0, 'the lease is alive');
    t.diagnostic(
      `${seen.renewed.length} renewals over two drops; remaining ${Math.round(session.remaining)} ms`,
    );
  });
});

describe('ending a session', () => {
  test('close() revokes the lease and its keys; it is idempotent', async () => {
    await using client = connect('close');
    const session = await client.session({ ttl: 30 });
    const seen = observe(session);
    await client.set('owned', 'v', { lease: session.lease });
    await session.close();
    assert.equal(await client.timetolive(session.lease), undefined, 'revoked');
    assert.equal(await client.get('owned'), undefined);
    assert.equal(session.alive, false);
    assert.equal(session.signal.aborted, true);
    assert.ok(session.signal.reason instanceof SessionExpiredError);
    assert.equal(seen.closed, 1);
    assert.equal(seen.lost.length, 0, 'closing is not losing');
    await session.close();
    assert.equal(seen.closed, 1, 'closed once');
  });

  test('orphan() stops keepalive and leaves the lease to expire by its TTL', async (t) => {
    await using client = connect('orphan');
    const session = await client.session({ ttl: 2 });
    const seen = observe(session);
    await client.set('owned', 'v', { lease: session.lease });
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    const orphaned = performance.now();
    session.orphan();
    assert.equal(session.alive, false);
    assert.equal(session.signal.aborted, true);
    assert.equal(seen.closed, 1);
    const renewals = seen.renewed.length;
    assert.ok(await client.timetolive(session.lease), 'the lease is not revoked');
    assert.equal(await client.get('owned').then((kv) => kv?.value), 'v');
    await eventually(async () => assert.equal(await client.timetolive(session.lease), undefined), {
      timeout: 20_000,
      interval: 100,
    });
    assert.equal(await client.get('owned'), undefined);
    assert.equal(seen.renewed.length, renewals, 'no keepalive after orphan()');
    assert.equal(seen.lost.length, 0);
    t.diagnostic(`the orphaned lease (TTL 2 s) expired ${since(orphaned)} ms after orphan()`);
  });

  test('await using closes the session', async () => {
    await using client = connect('dispose');
    let lease = 0n;
    {
      await using session = await client.session({ ttl: 30 });
      lease = session.lease;
      assert.ok(await client.timetolive(lease));
    }
    assert.equal(await client.timetolive(lease), undefined);
  });

  test('the keepalive socket is closed once no session needs it', async (t) => {
    await using client = connect('idle');
    const a = await client.session({ ttl: 30 });
    await eventually(() => assert.equal(client.socketStats.keepalive, 1));
    await a.close();
    const started = performance.now();
    const b = await client.session({ ttl: 30 });
    const seen = observe(b);
    await eventually(() => assert.ok(seen.renewed.length >= 1));
    t.diagnostic(
      `TTL 30 s on a fresh socket: first renewal ${Math.round(seen.renewed[0]!.at - started)} ms after session() was called`,
    );
    assert.equal(client.socketStats.keepalive, 2, 'a new socket for the new session');
    await b.close();
  });
});

describe('resume and options', () => {
  test('a session resumes an existing lease ID and keeps it alive', async () => {
    await using owner = connect('resume-owner');
    await using client = connect('resume');
    const lease = await owner.grant(3);
    await owner.set('held', 'v', { lease: lease.id });
    const started = performance.now();
    await using session = await client.session({ lease: lease.id });
    const seen = observe(session);
    assert.equal(session.lease, lease.id);
    assert.equal(session.ttl, 3);
    await eventually(
      () =>
        assert.ok(
          since(started) > 4_000 && seen.renewed.length >= 3,
          `${seen.renewed.length} renewals`,
        ),
      { timeout: 20_000, interval: 100 },
    );
    assert.ok(await owner.timetolive(lease.id), 'kept alive past its TTL');
    assert.equal(await owner.get('held').then((kv) => kv?.value), 'v');
    await session.close();
    assert.equal(await owner.timetolive(lease.id), undefined);
  });

  test('resuming a lease that does not exist rejects with LeaseNotFoundError', async () => {
    await using client = connect('resume-missing');
    const lease = await client.grant(5);
    await client.revoke(lease.id);
    await assert.rejects(client.session({ lease: lease.id }), LeaseNotFoundError);
    assert.equal(client.socketStats.keepalive, 0);
  });

  test('bad TTLs and unknown options are refused', async () => {
    await using client = connect('options');
    const leases = (await client.leases()).length;
    for (const ttl of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(client.session({ ttl }), InvalidArgumentError, String(ttl));
    }
    await assert.rejects(
      client.session({ TTL: 5 } as unknown as { ttl: number }),
      InvalidArgumentError,
    );
    await assert.rejects(client.session({ lease: 0n }), InvalidArgumentError);
    assert.equal((await client.leases()).length, leases, 'no lease was granted');
  });
});
