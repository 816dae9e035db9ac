// Interop with `etcdctl elect` (etcd's Go concurrency.Election) on the same
// names, both ways: etcdctl leads and we wait, observe and take over; we lead
// and etcdctl observes (`elect -l`), waits, and takes over; candidates() lists
// etcdctl in line, and observe() sees no leader once etcdctl is gone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Etcdctl } from './helpers.js';
import { Observer } from './observer.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

/** Names are full keys here: etcdctl knows nothing of a keyPrefix. */
function electionName(): string {
  return `${uniquePrefix('elect')}job`;
}

/** An observer of `election`, once it has reported that nobody leads yet. */
async function observing(election: Election): Promise<Observer> {
  const observer = new Observer(election);
  await eventually(() => assert.deepEqual(observer.values(), [null]));
  return observer;
}

test('etcdctl elect leads; we observe it, wait our turn, and take over when it resigns', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using session = await client.session({ ttl: 10 });
  const name = electionName();
  const election = new Election(client, name, { session });
  const observer = await observing(election);

  const ctl = new Etcdctl(etcd.endpoint, ['elect', name, 'from etcdctl']);
  try {
    // etcdctl prints its key and value once elected.
    await eventually(() => assert.equal(ctl.lines[1], 'from etcdctl', ctl.stderr));
    const ctlKey = ctl.lines[0]!;
    assert.match(ctlKey, new RegExp(`^${name}/[0-9a-f]+$`));
    const leader = await election.leader();
    assert.equal(leader?.key, ctlKey);
    assert.equal(leader?.value, 'from etcdctl');
    await eventually(() => assert.deepEqual(observer.values(), [null, 'from etcdctl']));

    let leadership: Awaited<ReturnType<Election['campaign']>> | undefined;
    const campaign = election.campaign('from etcdkit').then((l) => {
      leadership = l;
      return l;
    });
    await eventually(async () => assert.equal((await client.readdir(`${name}/`)).count, 2));
    assert.equal(leadership, undefined, 'we wait while etcdctl leads');

    await ctl.interrupt(); // etcdctl resigns on SIGINT
    const ours = await campaign;
    assert.ok(ours.token > leader!.token);
    assert.equal((await election.leader())?.value, 'from etcdkit');
    await eventually(() =>
      assert.deepEqual(observer.values(), [null, 'from etcdctl', 'from etcdkit']),
    );
    await ours.resign();
  } finally {
    await ctl.kill();
    await observer.stop();
  }
});

test('we lead; etcdctl elect -l observes our proclaims, and etcdctl elect takes over after we resign', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using session = await client.session({ ttl: 10 });
  const name = electionName();
  const election = new Election(client, name, { session });
  const leadership = await election.campaign('first');

  const observer = new Etcdctl(etcd.endpoint, ['elect', '-l', name]);
  const candidate = new Etcdctl(etcd.endpoint, ['elect', name, 'from etcdctl']);
  try {
    // `elect -l` prints key and value for each change.
    await eventually(() => assert.deepEqual(observer.lines, [leadership.key, 'first']));
    await leadership.proclaim('second');
    await eventually(() =>
      assert.deepEqual(observer.lines, [leadership.key, 'first', leadership.key, 'second']),
    );

    // etcdctl waits in line behind us.
    await eventually(async () => assert.equal((await client.readdir(`${name}/`)).count, 2));
    assert.deepEqual(candidate.lines, []);

    await leadership.resign();
    await eventually(() => assert.equal(candidate.lines[1], 'from etcdctl', candidate.stderr));
    const ctlKey = candidate.lines[0]!;
    assert.notEqual(ctlKey, leadership.key);
    await eventually(() => assert.deepEqual(observer.lines.slice(-2), [ctlKey, 'from etcdctl']));
    const leader = await election.leader();
    assert.equal(leader?.key, ctlKey);
    assert.ok(leader!.token > leadership.token);

    // etcdctl resigns on SIGINT: the election is empty again.
    await candidate.interrupt();
    assert.equal(await election.leader(), undefined);
  } finally {
    await candidate.kill();
    await observer.kill();
  }
});

test('candidates() lists etcdctl waiting in line; observe() sees no leader once etcdctl is gone', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using session = await client.session({ ttl: 10 });
  const name = electionName();
  const election = new Election(client, name, { session });
  const observer = await observing(election);
  const ours = await election.campaign('from etcdkit');
  const ctl = new Etcdctl(etcd.endpoint, ['elect', name, 'from etcdctl']);
  try {
    const line = await eventually(async () => {
      const all = await election.candidates();
      assert.equal(all.length, 2, ctl.stderr);
      return all;
    });
    const [first, second] = line;
    assert.equal(first!.key, ours.key);
    assert.equal(first!.token, ours.token);
    assert.equal(first!.lease, session.lease);
    assert.equal(first!.value, 'from etcdkit');
    // etcdctl's key is <name>/<its lease in hex>, behind ours.
    assert.equal(second!.key, `${name}/${second!.lease.toString(16)}`);
    assert.notEqual(second!.lease, session.lease);
    assert.equal(second!.value, 'from etcdctl');
    assert.ok(second!.token > ours.token);
    assert.deepEqual(ctl.lines, [], 'etcdctl waits');

    await ours.resign();
    await eventually(() => assert.equal(ctl.lines[0], second!.key, ctl.stderr));
    const now = await election.candidates();
    assert.deepEqual(
      now.map((c) => [c.key, c.value, c.token]),
      [[second!.key, 'from etcdctl', second!.token]],
    );

    await ctl.interrupt(); // etcdctl resigns on SIGINT, and nobody else campaigns
    await eventually(() =>
      assert.deepEqual(observer.values(), [null, 'from etcdkit', 'from etcdctl', null]),
    );
    assert.deepEqual(await election.candidates(), []);
  } finally {
    await ctl.kill();
    await observer.stop();
  }
});
