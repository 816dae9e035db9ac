// election.run() against one real etcd: it campaigns, works while it leads,
// ends the work before it hands over, campaigns again after a loss or when
// the work returns, tells followers each new leader, and stops (the work
// first, then the key) when its signal aborts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, SessionExpiredError } from '@etcdkit/client';
import { Election, NotLeaderError } from '@etcdkit/election';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { aborted, RecordedRun } from './recorded-run.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

/** Clients sharing one key prefix; each has its own shared session (one replica each). */
function replicas(count: number, options: { sessionTtl?: number } = {}): Etcd[] {
  const keyPrefix = uniquePrefix('run');
  return Array.from(
    { length: count },
    () => new Etcd({ endpoints: etcd.endpoint, keyPrefix, ...options }),
  );
}

test('campaigns and works; on abort the work ends first, then the key is deleted, then run() resolves', async () => {
  const [client] = replicas(1);
  await using _ = client!;
  const election = new Election(client!, 'jobs');
  const run = new RecordedRun(election, 'w1', async (leadership) => {
    run.events.push('working');
    await aborted(leadership.signal);
    // Told to stop, it still holds the key: no other leader can start yet.
    const line = await election.candidates();
    run.events.push(`work ended, key ${line[0]?.key === leadership.key ? 'kept' : 'gone'}`);
  });
  await eventually(() => assert.deepEqual(run.events, ['started 1', 'working']));
  const [term] = run.terms;
  assert.ok(term!.leading);
  assert.equal((await election.leader())?.key, term!.key);
  assert.equal((await election.leader())?.value, 'w1');
  await eventually(() => assert.deepEqual(run.leadersSeen(), [term!.token]));

  const reason = new Error('shutting down');
  await run.stop(reason);
  assert.deepEqual(run.events, ['started 1', 'working', 'work ended, key kept', 'stopped 1']);
  assert.equal(term!.signal.reason, reason);
  assert.deepEqual(await election.candidates(), [], 'the key was deleted before run() resolved');
  assert.deepEqual(run.errors, []);
});

test('after its lease is revoked from outside, it stops working and campaigns again on a new lease', async () => {
  const [client, admin] = replicas(2, { sessionTtl: 3 });
  await using _ = client!;
  await using __ = admin!;
  const election = new Election(client!, 'revoked');
  const run = new RecordedRun(election, 'w', async (leadership) => {
    await aborted(leadership.signal);
    run.events.push(`work ${run.terms.indexOf(leadership) + 1} ended`);
  });
  await eventually(() => assert.deepEqual(run.events, ['started 1']));
  const first = run.terms[0]!;

  await admin!.revoke(first.lease);
  await eventually(
    () => assert.deepEqual(run.events, ['started 1', 'work 1 ended', 'stopped 1', 'started 2']),
    { timeout: 30_000 },
  );
  const second = run.terms[1]!;
  assert.ok(
    first.signal.reason instanceof NotLeaderError ||
      first.signal.reason instanceof SessionExpiredError,
    String(first.signal.reason),
  );
  assert.notEqual(second.lease, first.lease);
  assert.ok(second.token > first.token);
  assert.ok(second.leading);
  assert.equal((await election.leader())?.key, second.key);
  await run.stop();
  assert.deepEqual(await election.candidates(), []);
});

test('a work that returns hands over to the next in line and campaigns again; followers see each new leader', async () => {
  const [ca, cb] = replicas(2);
  await using _ = ca!;
  await using __ = cb!;
  let finishFirstTerm!: () => void;
  const firstTermDone = new Promise<void>((resolve) => {
    finishFirstTerm = resolve;
  });
  const a = new RecordedRun(new Election(ca!, 'relay'), 'a', async (leadership, term) => {
    if (term === 1) await Promise.race([firstTermDone, aborted(leadership.signal)]);
    else await aborted(leadership.signal);
  });
  await eventually(() => assert.deepEqual(a.events, ['started 1']));
  const a1 = a.terms[0]!;
  const b = new RecordedRun(new Election(cb!, 'relay'), 'b', (leadership) =>
    aborted(leadership.signal),
  );
  const election = new Election(ca!, 'relay');
  await eventually(async () => assert.equal((await election.candidates()).length, 2));
  // b follows: its first news is a's leadership, and it has not started.
  await eventually(() => assert.deepEqual(b.leaders, [a1.token]));
  assert.deepEqual(b.events, []);

  finishFirstTerm();
  await eventually(() => assert.deepEqual(b.events, ['started 1']));
  const b1 = b.terms[0]!;
  await eventually(() => assert.deepEqual(a.events, ['started 1', 'stopped 1']));
  // a campaigned again, behind b.
  await eventually(async () =>
    assert.deepEqual(
      (await election.candidates()).map((c) => c.value),
      ['b', 'a'],
    ),
  );
  assert.equal(a1.leading, false);
  await eventually(() => assert.deepEqual(a.leadersSeen(), [a1.token, b1.token]));
  await eventually(() => assert.deepEqual(b.leaders, [a1.token, b1.token]));

  await b.stop();
  assert.deepEqual(b.events, ['started 1', 'stopped 1']);
  await eventually(() => assert.deepEqual(a.events, ['started 1', 'stopped 1', 'started 2']));
  const a2 = a.terms[1]!;
  assert.ok(a2.token > b1.token && b1.token > a1.token);
  await eventually(() => assert.deepEqual(a.leadersSeen(), [a1.token, b1.token, a2.token]));
  assert.deepEqual(b.leaders, [a1.token, b1.token], 'nothing is reported after run() stopped');
  await a.stop();
  assert.deepEqual(await election.candidates(), []);
});

test('aborted while waiting in line, it withdraws its key and resolves without working', async () => {
  const [ca, cb] = replicas(2);
  await using _ = ca!;
  await using __ = cb!;
  await using leadership = await new Election(ca!, 'queue').campaign('leader');
  const election = new Election(cb!, 'queue');
  const run = new RecordedRun(election, 'follower', async () => {
    run.events.push('worked');
  });
  await eventually(async () => assert.equal((await election.candidates()).length, 2));
  await run.stop();
  await eventually(async () =>
    assert.deepEqual(
      (await election.candidates()).map((c) => c.value),
      ['leader'],
    ),
  );
  assert.deepEqual(run.events, []);
  assert.ok(leadership.leading);

  // Aborted at once, or before run() starts: it resolves and leaves nothing behind.
  const early = new RecordedRun(election, 'late', async () => undefined);
  early.controller.abort();
  await early.done;
  const again = new RecordedRun(new Election(cb!, 'queue'), 'never', async () => undefined, {
    signal: AbortSignal.abort(),
  });
  await again.done;
  assert.equal((await election.candidates()).length, 1);
});

test('an election on its own session: run() rejects with SessionExpiredError once the session ends', async () => {
  const [client] = replicas(1);
  await using _ = client!;
  const session = await client!.session({ ttl: 10 });
  const election = new Election(session, 'own');
  const run = new RecordedRun(election, 'w', (leadership) => aborted(leadership.signal));
  await eventually(() => assert.deepEqual(run.events, ['started 1']));
  const ended = assert.rejects(run.done, SessionExpiredError);
  await session.close();
  await ended;
  assert.deepEqual(run.events, ['started 1', 'stopped 1']);
  assert.deepEqual(await election.candidates(), []);
});
