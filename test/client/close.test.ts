// Closing a client ends everything it started: sessions (their leases revoked,
// so locks and registrations on them are released at once), watchers,
// keepalives and connections, with no `lost` event and no timer left behind.
// Afterwards every call rejects with ClientClosedError.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { ClientClosedError, Etcd } from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

describe('close() ends everything', () => {
  test('every session the client made is closed and its lease revoked, with no lost event', async () => {
    await using observer = new Etcd({ endpoints: etcd.endpoint });
    const client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('close') });
    const own = await client.session({ ttl: 60 });
    const shared = await client.sharedSession();
    const events: string[] = [];
    for (const session of [own, shared]) {
      session.on('lost', () => events.push('lost'));
      session.on('closed', () => events.push('closed'));
    }
    await client.set('held', 1, { lease: own.lease });
    await client.close();
    assert.deepEqual(events, ['closed', 'closed']);
    assert.equal(own.state, 'closed');
    assert.equal(shared.state, 'closed');
    assert.ok(own.signal.aborted && shared.signal.aborted);
    for (const lease of [own.lease, shared.lease]) {
      assert.equal(await observer.timetolive(lease), undefined, `lease ${lease} was revoked`);
    }
  });

  test('a second close() is a no-op; every call afterwards rejects with ClientClosedError', async () => {
    const client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('after') });
    await client.set('k', 1);
    await Promise.all([client.close(), client.close()]);
    await client.close();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => client.get('k')],
      ['set', () => client.set('k', 2)],
      ['delete', () => client.delete('k')],
      ['readdir', () => client.readdir('')],
      ['txn', () => client.txn().commit()],
      ['grant', () => client.grant(5)],
      ['revoke', () => client.revoke(1n)],
      ['keepalive', () => client.keepalive(1n)],
      ['timetolive', () => client.timetolive(1n)],
      ['leases', () => client.leases()],
      ['version', () => client.version()],
      ['session', () => client.session()],
      ['sharedSession', () => client.sharedSession()],
      ['watch', () => client.watch('k')],
      ['watchdir', () => client.watchdir('d/')],
      ['mirror', () => client.mirror('d/')],
    ];
    for (const [name, call] of calls) {
      await assert.rejects(call(), ClientClosedError, `${name} after close`);
    }
  });

  test("from the moment close() is called, a caller's revoke is refused", async () => {
    await using observer = new Etcd({ endpoints: etcd.endpoint });
    const client = new Etcd({ endpoints: etcd.endpoint });
    const { id } = await client.grant(60);
    const closing = client.close();
    await assert.rejects(client.revoke(id), ClientClosedError);
    await closing;
    assert.ok(await observer.timetolive(id), 'the lease was not revoked by the refused call');
    await observer.revoke(id);
  });

  test('a call still in flight on a silent member is cut after its grace with ClientClosedError, and close() ends', async () => {
    await using proxy = await startProxy(etcd.endpoint);
    const client = new Etcd({ endpoints: proxy.url, timeout: 600_000 });
    await client.set(uniquePrefix('grace'), 1);
    await proxy.blackhole();
    const settle = (call: Promise<unknown>) =>
      call.then(
        () => 'resolved',
        (err: unknown) => err,
      );
    const inFlight = settle(client.get('anything'));
    const writing = settle(client.set('written', 1));
    // Without the cut, the get would wait for the client's 10-minute deadline, and close() with it.
    await client.close();
    const outcome = await inFlight;
    assert.ok(outcome instanceof ClientClosedError, `the call was cut: ${String(outcome)}`);
    assert.equal(outcome.indeterminate, false, 'a read is never in doubt');
    const written = await writing;
    assert.ok(written instanceof ClientClosedError, `the write was cut: ${String(written)}`);
    assert.equal(written.indeterminate, true, 'a write that went out may have been applied');
  });

  test('a session granted while the client closes is revoked, not handed out', async () => {
    await using observer = new Etcd({ endpoints: etcd.endpoint });
    const client = new Etcd({ endpoints: etcd.endpoint });
    const before = new Set((await observer.leases()).map(String));
    const pending = client.session({ ttl: 60 }).catch((err: unknown) => err);
    const closing = client.close();
    const outcome = await pending;
    await closing;
    if (!(outcome instanceof Error)) {
      // Granted before close began: then close() ended it with the others.
      assert.equal((outcome as { state: string }).state, 'closed');
    } else assert.ok(outcome instanceof ClientClosedError, String(outcome));
    const leftover = (await observer.leases()).filter((l) => !before.has(String(l)));
    assert.deepEqual(leftover, [], 'no lease of the closed client is left');
  });

  test('a process exits by itself right after close(), its lock and registration gone', async () => {
    await using observer = new Etcd({ endpoints: etcd.endpoint });
    const keyPrefix = uniquePrefix('child');
    const script = new URL('./close-child.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, etcd.endpoint, keyPrefix], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    const lines = createInterface({ input: child.stdout });
    const messages: Array<Record<string, unknown>> = [];
    lines.on('line', (line) => messages.push(JSON.parse(line) as Record<string, unknown>));
    // Generous: without close() ending its sessions the process lives on for the 60 s TTL.
    const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code, signal] = await exited;
    clearTimeout(deadline);
    assert.equal(signal, null, 'the child ended by itself, not by the deadline');
    assert.equal(code, 0);
    const held = messages[0] as {
      leases: string[];
      lockKey: string;
      leaderKey: string;
      registrationKey: string;
    };
    const done = messages[1] as Record<string, unknown>;
    assert.deepEqual(done, {
      closed: true,
      lost: [],
      lockSignalAborted: true,
      leadershipSignalAborted: true,
      watcherEnd: 'closed',
      mirrorSize: 1,
    });
    const prefixed = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    try {
      assert.equal(await prefixed.get(held.lockKey), undefined, 'the lock key is gone');
      assert.equal(await prefixed.get(held.leaderKey), undefined, 'the leader key is gone');
      assert.equal(await prefixed.get(held.registrationKey), undefined, 'the registration is gone');
    } finally {
      await prefixed.close();
    }
    for (const lease of held.leases) {
      assert.equal(await observer.timetolive(BigInt(lease)), undefined, `lease ${lease} revoked`);
    }
  });
});

describe('Session.close() after loss', () => {
  test('still revokes the lease, which may outlive what the session could prove', async () => {
    await using proxy = await startProxy(etcd.endpoint);
    await using observer = new Etcd({ endpoints: etcd.endpoint });
    await using client = new Etcd({ endpoints: proxy.url, timeout: 2_000 });
    const session = await client.session({ ttl: 3 });
    // Someone else keeps the lease alive while this session's keepalives are swallowed.
    const renew = setInterval(
      () => void observer.keepalive(session.lease).catch(() => undefined),
      300,
    );
    try {
      await proxy.blackhole();
      await eventually(() => assert.equal(session.state, 'lost'), { timeout: 10_000 });
      assert.ok(await observer.timetolive(session.lease), 'the lease itself is still alive');
      await proxy.pass();
    } finally {
      clearInterval(renew);
    }
    await session.close();
    assert.equal(await observer.timetolive(session.lease), undefined);
  });
});

describe('the first keepalive', () => {
  test('goes out as soon as the keepalive socket opens', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    // TTL 600: the session's next tick comes a minute later, so an answer well
    // before that proves the keepalive did not wait for it.
    const session = await client.session({ ttl: 600 });
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      new Promise<string>((resolve) => session.once('renewed', () => resolve('renewed'))),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('no keepalive yet'), 15_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(first, 'renewed');
    await session.close();
  });
});
