// The election's API against one real etcd: campaign, leader, proclaim,
// resign, the leadership's signal and guard, resume, and its errors.
// observe() has observe.test.ts, run() run.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Compare,
  Etcd,
  InvalidArgumentError,
  Op,
  type Session,
  SessionExpiredError,
} from '@etcdkit/client';
import { AlreadyCampaigningError, Election, NotLeaderError } from '@etcdkit/election';
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
after(async () => {
  await etcd?.close();
});

/** A client of its own key prefix (the default json codec: election values bypass it). */
function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('election') });
}

/** Settles to 'pending' if `promise` has not settled by the next macrotask. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  const pending = Symbol('pending');
  const r = await Promise.race([
    promise.then(
      () => 'fulfilled' as const,
      () => 'rejected' as const,
    ),
    new Promise((resolve) => setImmediate(() => resolve(pending))),
  ]);
  return r === pending ? 'pending' : (r as 'fulfilled' | 'rejected');
}

async function keysUnder(client: Etcd, prefix: string): Promise<string[]> {
  return (await client.readdir(prefix)).kvs.map((kv) => kv.key);
}

describe('names and options', () => {
  test('bad names, a session given twice and unknown options are refused', async () => {
    await using client = connect();
    for (const name of ['', 'jobs/', '/']) {
      assert.throws(() => new Election(client, name), InvalidArgumentError, name);
    }
    assert.throws(() => new Election(client, 42 as unknown as string), InvalidArgumentError);
    await using session = await client.session({ ttl: 10 });
    assert.throws(
      () => new Election(session, 'jobs', { session }),
      (err: unknown) => err instanceof InvalidArgumentError && /session/.test(err.message),
    );
    // A session alone is enough: its client does the reads and writes.
    assert.equal(new Election(session, 'jobs').prefix, 'jobs/');
    assert.throws(
      () => new Election(client, 'jobs', { sesion: session } as never),
      InvalidArgumentError,
    );
    const election = new Election(client, 'jobs', { session });
    assert.equal(election.prefix, 'jobs/');
    await assert.rejects(
      election.campaign('v', { sginal: undefined } as never),
      InvalidArgumentError,
    );
    await assert.rejects(election.campaign(42 as unknown as string), InvalidArgumentError);
    await assert.rejects(election.leader({ limit: 1 } as never), InvalidArgumentError);
    await assert.rejects(election.observe({ every: true } as never).next(), InvalidArgumentError);
    assert.deepEqual(await keysUnder(client, ''), [], 'nothing was written');
  });
});

describe('campaign, leader, proclaim, resign', () => {
  test('a lone candidate leads at once; its key and value are as etcdctl writes them', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const election = new Election(client, 'jobs', { session });
    assert.equal(await election.leader(), undefined);

    await using leadership = await election.campaign('alpha');
    assert.equal(leadership.key, `jobs/${session.lease.toString(16)}`);
    assert.equal(leadership.lease, session.lease);
    assert.ok(leadership.leading);
    assert.equal(leadership.signal.aborted, false);

    const stored = await client.get(leadership.key);
    assert.equal(stored?.createRevision, leadership.token, 'the token is the create revision');
    assert.equal(stored?.lease, session.lease);
    assert.equal(Buffer.from(stored!.valueBytes).toString(), 'alpha', 'stored raw, not as JSON');

    const leader = await election.leader();
    assert.equal(leader?.key, leadership.key);
    assert.equal(leader?.value, 'alpha');
    assert.equal(leader?.token, leadership.token);
    assert.equal(leader?.lease, session.lease);
  });

  test('proclaim replaces the value; resign deletes the key; both refuse once not leading', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const election = new Election(client, 'jobs', { session });
    const leadership = await election.campaign('v1');
    await leadership.proclaim('v2');
    assert.equal((await election.leader())?.value, 'v2');
    const bytes = Uint8Array.from([0, 1, 0xfe, 0xff]);
    await leadership.proclaim(bytes);
    assert.deepEqual(Buffer.from((await election.leader())!.valueBytes), Buffer.from(bytes));
    assert.equal((await election.leader())?.token, leadership.token, 'proclaim keeps the token');

    await leadership.resign();
    assert.equal(leadership.leading, false);
    assert.ok(leadership.signal.reason instanceof NotLeaderError);
    assert.equal(await election.leader(), undefined);
    await leadership.resign(); // idempotent
    await assert.rejects(
      leadership.proclaim('v3'),
      (err: unknown) => err instanceof NotLeaderError && err.code === 'ETCDKIT_NOT_LEADER',
    );
    assert.equal(await election.leader(), undefined, 'a refused proclaim writes nothing');
  });

  test('the guard fences writes to the leader’s term', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const leadership = await new Election(client, 'jobs', { session }).campaign('a');
    const write = (n: number) =>
      client.txn().if(leadership.guard()).success(Op.put('resource', n)).commit();
    assert.equal((await write(1)).succeeded, true);
    await leadership.resign();
    assert.equal((await write(2)).succeeded, false);
    assert.equal((await client.get('resource'))?.value, 1);
  });

  test('candidates lead one after the other, in the order they joined, with growing tokens', async () => {
    await using client = connect();
    const sessions: Session[] = [];
    for (let i = 0; i < 3; i++) sessions.push(await client.session({ ttl: 10 }));
    try {
      const elections = sessions.map((session) => new Election(client, 'queue', { session }));
      const first = await elections[0]!.campaign('c0');
      const second = elections[1]!.campaign('c1');
      await eventually(async () => assert.equal((await keysUnder(client, 'queue/')).length, 2));
      const third = elections[2]!.campaign('c2');
      await eventually(async () => assert.equal((await keysUnder(client, 'queue/')).length, 3));
      assert.equal(await state(second), 'pending');
      assert.equal(await state(third), 'pending');
      assert.equal((await elections[2]!.leader())?.value, 'c0');

      await first.resign();
      const secondLeads = await second;
      assert.ok(secondLeads.token > first.token);
      assert.equal(await state(third), 'pending');
      assert.equal((await elections[0]!.leader())?.value, 'c1');

      await secondLeads.resign();
      const thirdLeads = await third;
      assert.ok(thirdLeads.token > secondLeads.token);
      await thirdLeads.resign();
    } finally {
      for (const s of sessions) await s.close();
    }
  });

  test('a candidate whose predecessor’s lease ends takes over', async () => {
    await using client = connect();
    const older = await client.session({ ttl: 10 });
    await using newer = await client.session({ ttl: 10 });
    const first = await new Election(client, 'ttl', { session: older }).campaign('old');
    const next = new Election(client, 'ttl', { session: newer }).campaign('new');
    await eventually(async () => assert.equal((await keysUnder(client, 'ttl/')).length, 2));
    await older.close(); // revokes the lease: the key goes with it
    assert.ok(first.signal.reason instanceof SessionExpiredError);
    const leadership = await next;
    assert.equal((await new Election(client, 'ttl').leader())?.value, 'new');
    await leadership.resign();
  });

  test('an aborted campaign rejects with the reason and leaves no candidate behind', async () => {
    await using client = connect();
    await using a = await client.session({ ttl: 10 });
    await using b = await client.session({ ttl: 10 });
    const leader = await new Election(client, 'abort', { session: a }).campaign('a');
    const controller = new AbortController();
    const waiting = new Election(client, 'abort', { session: b }).campaign('b', {
      signal: controller.signal,
    });
    await eventually(async () => assert.equal((await keysUnder(client, 'abort/')).length, 2));
    const reason = new Error('changed my mind');
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    // The withdrawal goes on in the background, so the rejection is not held up by it.
    await eventually(async () => assert.deepEqual(await keysUnder(client, 'abort/'), [leader.key]));
    // An already aborted signal rejects before anything is written.
    await assert.rejects(
      new Election(client, 'abort', { session: b }).campaign('b', { signal: AbortSignal.abort() }),
      { name: 'AbortError' },
    );
    assert.deepEqual(await keysUnder(client, 'abort/'), [leader.key]);
    await leader.resign();
  });

  test('a campaign whose session ends while waiting rejects with SessionExpiredError', async () => {
    await using client = connect();
    await using a = await client.session({ ttl: 10 });
    const b = await client.session({ ttl: 10 });
    const leader = await new Election(client, 'lost', { session: a }).campaign('a');
    const waiting = new Election(client, 'lost', { session: b }).campaign('b');
    await eventually(async () => assert.equal((await keysUnder(client, 'lost/')).length, 2));
    const rejected = assert.rejects(waiting, SessionExpiredError);
    await b.close();
    await rejected;
    assert.deepEqual(await keysUnder(client, 'lost/'), [leader.key]);
    // A closed session cannot campaign.
    await assert.rejects(
      new Election(client, 'lost', { session: b }).campaign('b'),
      SessionExpiredError,
    );
    await leader.resign();
  });

  test('one session campaigns once per election at a time', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const one = new Election(client, 'once', { session });
    const two = new Election(client, 'once', { session });
    const leadership = await one.campaign('a');
    await assert.rejects(
      two.campaign('b'),
      (err: unknown) =>
        err instanceof AlreadyCampaigningError && err.code === 'ETCDKIT_ALREADY_CAMPAIGNING',
    );
    await assert.rejects(one.resume(), AlreadyCampaigningError);
    // Another election on the same session is fine.
    await using other = await new Election(client, 'other', { session }).campaign('x');
    assert.ok(other.leading);
    await leadership.resign();
    await using again = await two.campaign('b');
    assert.ok(again.token > leadership.token);
  });

  test('without a session, the client’s shared session is used', async () => {
    await using client = connect();
    const election = new Election(client, 'shared');
    await using leadership = await election.campaign('s');
    assert.equal(leadership.lease, (await client.sharedSession()).lease);
  });
});

describe('losing leadership', () => {
  test('a deleted key ends the leadership: signal, lost event, NotLeaderError', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const leadership = await new Election(client, 'del', { session }).campaign('a');
    const lost = new Promise<Error>((resolve) => leadership.once('lost', resolve));
    await client.delete(leadership.key); // an operator, or anyone
    const err = await lost;
    assert.ok(err instanceof NotLeaderError);
    assert.equal(leadership.signal.reason, err);
    assert.equal(leadership.leading, false);
    await assert.rejects(leadership.proclaim('b'), NotLeaderError);
    await assert.rejects(leadership.resign(), NotLeaderError);
    await leadership[Symbol.asyncDispose](); // disposal lets a lost leadership go quietly
    assert.equal(await client.get(leadership.key), undefined, 'proclaim did not re-create it');
  });

  test('a re-created key is not this leadership: proclaim refuses and writes nothing', async () => {
    await using client = connect();
    await using session = await client.session({ ttl: 10 });
    const leadership = await new Election(client, 'replaced', { session }).campaign('a');
    // Delete and re-create at once: same key, another create revision.
    await client
      .txn()
      .if(Compare.createRevision(leadership.key, '=', leadership.token))
      .success(Op.delete(leadership.key), Op.put('unrelated', 1))
      .commit();
    await client.set(leadership.key, 'impostor', { lease: session.lease });
    await assert.rejects(leadership.proclaim('b'), NotLeaderError);
    assert.equal(leadership.leading, false);
    assert.equal((await client.get(leadership.key))?.value, 'impostor');
  });

  test('a closed session ends the leadership with SessionExpiredError', async () => {
    await using client = connect();
    const session = await client.session({ ttl: 10 });
    const leadership = await new Election(client, 'closed', { session }).campaign('a');
    await session.close();
    assert.equal(leadership.leading, false);
    assert.ok(leadership.signal.reason instanceof SessionExpiredError);
    await assert.rejects(leadership.proclaim('b'), NotLeaderError);
  });
});

describe('resume', () => {
  test('after a restart, the same lease takes its leadership back with the same token', async () => {
    await using client = connect();
    const before = await client.session({ ttl: 30 });
    const held = await new Election(client, 'resume', { session: before }).campaign('v1');
    before.orphan(); // the process "dies" without revoking its lease

    await using session = await client.session({ lease: before.lease });
    const election = new Election(client, 'resume', { session });
    await using leadership = await election.resume({ token: held.token });
    assert.equal(leadership.token, held.token);
    assert.equal(leadership.key, held.key);
    await leadership.proclaim('v2');
    assert.equal((await election.leader())?.value, 'v2');
  });

  test('campaign with a resumed lease finds its key and proclaims the new value on it', async () => {
    await using client = connect();
    const before = await client.session({ ttl: 30 });
    const held = await new Election(client, 'again', { session: before }).campaign('old');
    before.orphan();
    await using session = await client.session({ lease: before.lease });
    await using leadership = await new Election(client, 'again', { session }).campaign('new');
    assert.equal(leadership.token, held.token);
    const leader = await new Election(client, 'again').leader();
    assert.equal(leader?.value, 'new');
    assert.equal(leader?.token, held.token);
  });

  test('resume refuses a missing key, another token, and a candidate that does not lead', async () => {
    await using client = connect();
    await using a = await client.session({ ttl: 30 });
    await using b = await client.session({ ttl: 30 });
    const other = new Election(client, 'refuse', { session: b });
    await assert.rejects(other.resume(), NotLeaderError);

    const leader = await new Election(client, 'refuse', { session: a }).campaign('a');
    // b's key is in line (left by an earlier run) but a leads.
    const bKey = `refuse/${b.lease.toString(16)}`;
    await client.set(bKey, 'b', { lease: b.lease });
    await assert.rejects(other.resume(), NotLeaderError);
    await client.delete(bKey);

    await assert.rejects(
      new Election(client, 'refuse', { session: a }).resume({ token: 5 as unknown as bigint }),
      InvalidArgumentError,
    );
    await leader.resign();
    // a's key is gone; a new campaign on the same lease has another token.
    await using again = await new Election(client, 'refuse', { session: a }).campaign('a');
    await again.resign();
    const same = new Election(client, 'refuse', { session: a });
    await assert.rejects(same.resume({ token: leader.token }), NotLeaderError);
  });
});

describe('across reconnects', () => {
  test('a leader whose key is deleted while its connection is down loses when it reconnects', async () => {
    const prefix = uniquePrefix('election');
    await using proxy = await startProxy(etcd.endpoint);
    await using direct = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using viaProxy = new Etcd({ endpoints: proxy.url, keyPrefix: prefix });
    await using session = await viaProxy.session({ ttl: 30 });
    const leadership = await new Election(viaProxy, 'gone', { session }).campaign('a');
    proxy.cut(); // break the watch stream; it reconnects by itself
    await direct.delete(leadership.key);
    await eventually(() => assert.equal(leadership.leading, false));
    assert.ok(leadership.signal.reason instanceof NotLeaderError);
    assert.ok(session.alive, 'the session itself was not lost');
  });
});
