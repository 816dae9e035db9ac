// Group membership against a real etcd: joins and leaves seen by other
// clients' views and listings, duplicate IDs refused without a trace, a lost
// lease noticed by the member itself and by the others, bad input refused
// before anything is written, and one `changed` event per etcd revision.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, InvalidArgumentError, Op, SessionExpiredError } from '@etcdkit/client';
import { Group, type Member, MemberExistsError, MembershipEndedError } from '@etcdkit/group';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';

/** Watch events reach a loaded machine late, but they do arrive. */
const SOON = { timeout: 30_000 };

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.close());

const ids = (members: readonly Member[]) => members.map((m) => m.id);

describe('Group', () => {
  test('a join and a leave are seen by another client, with the capabilities', async () => {
    const keyPrefix = uniquePrefix('group-join');
    await using observer = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using worker = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using view = await new Group(observer, 'workers').view();
    const events: string[] = [];
    view.on('joined', (m) => events.push(`joined ${m.id}`));
    view.on('left', (m) => events.push(`left ${m.id}`));
    assert.equal(view.size, 0);

    const membership = await new Group(worker, 'workers').join('w1', {
      capabilities: { zone: 'a', gpu: 'yes' },
      ttl: 5,
    });
    assert.equal(membership.key, 'workers/w1');
    await eventually(() => assert.ok(view.has('w1')), SOON);
    const seen = view.get('w1')!;
    assert.deepEqual(seen.capabilities, { zone: 'a', gpu: 'yes' });
    assert.equal(seen.lease, membership.lease);
    assert.equal(seen.createRevision, membership.createRevision);
    const listed = await new Group(observer, 'workers').members();
    assert.deepEqual(ids(listed), ['w1']);

    await membership.leave();
    assert.equal(membership.active, false);
    assert.ok(membership.signal.reason instanceof MembershipEndedError);
    await eventually(() => assert.equal(view.size, 0), SOON);
    assert.deepEqual(events, ['joined w1', 'left w1']);
    // leave() revoked the membership's own lease.
    assert.equal(await observer.timetolive(membership.lease), undefined);
    await membership.leave(); // idempotent
  });

  test('a duplicate member ID is refused, and the refused join leaves no lease behind', async () => {
    const keyPrefix = uniquePrefix('group-dup');
    await using a = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using b = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const first = await new Group(a, 'g').join('x', { ttl: 5 });
    const leasesBefore = (await b.leases()).length;
    await assert.rejects(new Group(b, 'g').join('x', { ttl: 5 }), (err: unknown) => {
      assert.ok(err instanceof MemberExistsError);
      assert.equal(err.memberId, 'x');
      assert.equal(err.lease, first.lease);
      return true;
    });
    assert.equal((await b.leases()).length, leasesBefore);
    assert.equal((await a.get('g/x'))?.lease, first.lease);

    // The same ID twice on one session is refused too; the first stays a member.
    const session = await b.session({ ttl: 5 });
    const y = await new Group(b, 'g').join('y', { session });
    await assert.rejects(new Group(b, 'g').join('y', { session }), MemberExistsError);
    assert.ok(y.active);
    // A given session stays open after leave; only the key goes.
    await y.leave();
    assert.equal(await b.get('g/y'), undefined);
    assert.ok(session.alive);
    // Once left, the ID can be joined again on the same session.
    const again = await new Group(b, 'g').join('y', { session });
    assert.ok(again.createRevision > y.createRevision);
    await session.close();
    await first.leave();
  });

  test('a lost lease ends the membership: lost, signal, and the others see it leave', async () => {
    const keyPrefix = uniquePrefix('group-lost');
    await using observer = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using worker = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using view = await new Group(observer, 'g').view();
    const membership = await new Group(worker, 'g').join('m', { ttl: 3 });
    await eventually(() => assert.ok(view.has('m')), SOON);
    const lost = new Promise<Error>((resolve) => membership.once('lost', resolve));
    const left = new Promise<Member>((resolve) => view.once('left', resolve));
    await observer.revoke(membership.lease);
    const error = await lost;
    assert.ok(error instanceof SessionExpiredError);
    assert.equal(membership.active, false);
    assert.equal(membership.signal.reason, error);
    assert.equal((await left).id, 'm');
    await membership.leave(); // after a loss, leave is quiet
  });

  test('bad input is refused before anything is written', async () => {
    const keyPrefix = uniquePrefix('group-bad');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    assert.throws(() => new Group(client, ''), InvalidArgumentError);
    assert.throws(() => new Group(client, 'g/'), InvalidArgumentError);
    const group = new Group(client, 'g');
    const leasesBefore = (await client.leases()).length;
    for (const id of ['', 'a/b', 'has space', '-dash', 'x'.repeat(129)])
      await assert.rejects(group.join(id), InvalidArgumentError, id);
    await assert.rejects(
      group.join('m', { capabilities: { zone: 3 } as never }),
      InvalidArgumentError,
    );
    await assert.rejects(group.join('m', { capabilities: { 'a b': 'x' } }), InvalidArgumentError);
    await assert.rejects(group.join('m', { ttl: 0 }), InvalidArgumentError);
    await assert.rejects(group.join('m', { tll: 3 } as never), /unknown option "tll"/);
    const session = await client.session({ ttl: 5 });
    await assert.rejects(group.join('m', { session, ttl: 3 }), InvalidArgumentError);
    await session.close();
    assert.equal((await client.leases()).length, leasesBefore);
    assert.deepEqual(await group.members(), []);
  });

  test('a view announces one change per revision, with everything that changed in it', async () => {
    const keyPrefix = uniquePrefix('group-batch');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using view = await new Group(client, 'g').view();
    const changes: string[][] = [];
    view.on('changed', (members) => changes.push(ids(members)));
    // Two members appear in one transaction, so in one revision.
    const lease = await client.grant(30);
    await client
      .txn()
      .success(
        Op.putRaw('g/a', '{"capabilities":{}}', { lease: lease.id }),
        Op.putRaw('g/b', 'not json', { lease: lease.id }),
        Op.putRaw('g/not/a/member', '', { lease: lease.id }),
      )
      .commit();
    await eventually(() => assert.equal(changes.length, 1), SOON);
    assert.deepEqual(changes, [['a', 'b']]);
    // A value this package did not write is a member with no capabilities.
    assert.deepEqual(view.get('b')?.capabilities, {});
    await client.revoke(lease.id);
    await eventually(() => assert.equal(changes.length, 2), SOON);
    assert.deepEqual(changes, [['a', 'b'], []]);
  });

  test('closing a view, by close() or by its signal, stops its events', async () => {
    const keyPrefix = uniquePrefix('group-close');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const stop = new AbortController();
    const view = await new Group(client, 'g').view({ signal: stop.signal });
    const closed = new Promise<void>((resolve) => view.once('closed', resolve));
    stop.abort();
    await closed;
    assert.equal(view.open, false);
    let events = 0;
    view.on('changed', () => events++);
    const m = await new Group(client, 'g').join('late', { ttl: 5 });
    // A second view, opened after the join, sees it: the first one, closed, never will.
    await using second = await new Group(client, 'g').view();
    assert.ok(second.has('late'));
    assert.equal(events, 0);
    await m.leave();
  });
});
