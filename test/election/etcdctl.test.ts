// Interop with `etcdctl elect` (etcd's Go concurrency.Election) on the same
// names, both ways: etcdctl leads and we wait, observe and take over; we lead
// and etcdctl observes (`elect -l`), waits, and takes over.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Election, type LeaderInfo } from '@etcdkit/election';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Etcdctl } from './helpers.js';

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

/** Collects what an observer yields until `signal` aborts. */
function observeInto(election: Election, seen: LeaderInfo[], signal: AbortSignal): Promise<void> {
  return (async () => {
    try {
      for await (const leader of election.observe({ signal })) seen.push(leader);
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  })();
}

test('etcdctl elect leads; we observe it, wait our turn, and take over when it resigns', async () => {
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using session = await client.session({ ttl: 10 });
  const name = electionName();
  const election = new Election(client, name, { session });
  const controller = new AbortController();
  const seen: LeaderInfo[] = [];
  const observing = observeInto(election, seen, controller.signal);

  const ctl = new Etcdctl(etcd.endpoint, ['elect', name, 'from etcdctl']);
  try {
    // etcdctl prints its key and value once elected.
    await eventually(() => assert.equal(ctl.lines[1], 'from etcdctl', ctl.stderr));
    const ctlKey = ctl.lines[0]!;
    assert.match(ctlKey, new RegExp(`^${name}/[0-9a-f]+$`));
    const leader = await election.leader();
    assert.equal(leader?.key, ctlKey);
    assert.equal(leader?.value, 'from etcdctl');
    await eventually(() => assert.deepEqual(values(seen), ['from etcdctl']));

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
    await eventually(() => assert.deepEqual(values(seen), ['from etcdctl', 'from etcdkit']));
    await ours.resign();
  } finally {
    await ctl.kill();
    controller.abort();
    await observing;
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

function values(seen: LeaderInfo[]): string[] {
  return seen.map((l) => l.value);
}
