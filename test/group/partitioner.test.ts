// The partitioner: rendezvous hashing is deterministic and moves only what it
// must (unit checks, no etcd), and over a real etcd two processes' partitioners
// agree, report the shards that move when members come and go, and a member
// whose lease is lost counts itself out at once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Group, type Rebalance, rendezvousOwner, weight } from '@etcdkit/group';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';

const KEYS = Array.from({ length: 2000 }, (_, i) => `job-${i}`);
const SHARDS = Array.from({ length: 24 }, (_, i) => `shard-${i}`);

function assignment(keys: readonly string[], members: readonly string[]): Map<string, string> {
  return new Map(keys.map((k) => [k, rendezvousOwner(k, members)!]));
}

describe('rendezvous hashing', () => {
  test('the owner depends on the set of members, not on their order or on the process', () => {
    const members = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const forward = assignment(KEYS, members);
    const backward = assignment(KEYS, [...members].reverse());
    assert.deepEqual(forward, backward);
    // SHA-256 of "m0\njob-0": the same in every process and on every machine.
    assert.equal(weight('m0', 'job-0'), weight('m0', 'job-0'));
    assert.equal(rendezvousOwner('job-0', []), undefined);
    // Every member gets a share.
    const counts = new Map<string, number>();
    for (const owner of forward.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), members);
  });

  test('a member leaving moves only its own keys, and a member joining takes only keys', () => {
    const members = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const before = assignment(KEYS, members);
    const without = assignment(
      KEYS,
      members.filter((m) => m !== 'm2'),
    );
    for (const key of KEYS) {
      if (before.get(key) === 'm2') assert.notEqual(without.get(key), 'm2');
      else assert.equal(without.get(key), before.get(key), key);
    }
    const joined = assignment(KEYS, [...members, 'm5']);
    let taken = 0;
    for (const key of KEYS) {
      if (joined.get(key) !== before.get(key)) {
        assert.equal(joined.get(key), 'm5', key);
        taken++;
      }
    }
    assert.ok(taken > 0, 'the new member took no key');
  });
});

/** Watch events reach a loaded machine late, but they do arrive. */
const SOON = { timeout: 30_000 };

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.close());

describe('Partitioner', () => {
  test('partitioners of two clients agree; rebalanced reports exactly the shards that moved', async () => {
    const keyPrefix = uniquePrefix('partition');
    await using a = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    await using b = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const ga = new Group(a, 'g');
    const gb = new Group(b, 'g');
    const ma = await ga.join('a', { ttl: 10 });
    const mb = await gb.join('b', { ttl: 10 });
    await using pa = await ga.partitioner({ shards: SHARDS, self: ma });
    await using pb = await gb.partitioner({ shards: SHARDS, self: mb });
    assert.deepEqual(pa.members, ['a', 'b']);
    await eventually(() => assert.deepEqual(pb.members, ['a', 'b']), SOON);
    // Both see the same owners, and between them own every shard once.
    for (const shard of SHARDS) assert.equal(pa.owner(shard), pb.owner(shard));
    assert.deepEqual([...pa.mine(), ...pb.mine()].sort(), [...SHARDS].sort());
    assert.deepEqual(pa.mine(), pb.owned('a'));

    const events: Rebalance[] = [];
    pa.on('rebalanced', (r) => events.push(r));
    const before = new Map(SHARDS.map((s) => [s, pa.owner(s)]));
    const mc = await gb.join('c', { ttl: 10 });
    await eventually(() => assert.equal(events.length, 1), SOON);
    const joined = events[0]!;
    assert.deepEqual(joined.members, ['a', 'b', 'c']);
    assert.ok(joined.moved.length > 0);
    for (const move of joined.moved) {
      assert.equal(move.to, 'c');
      assert.equal(move.from, before.get(move.shard));
    }
    // Exactly the shards that changed owner are reported, no more.
    const changed = SHARDS.filter((s) => pa.owner(s) !== before.get(s));
    assert.deepEqual(
      joined.moved.map((m) => m.shard),
      changed,
    );
    assert.deepEqual(
      joined.released,
      changed.filter((s) => before.get(s) === 'a'),
    );
    assert.deepEqual(joined.acquired, []);

    await mc.leave();
    await eventually(() => assert.equal(events.length, 2), SOON);
    const left = events[1]!;
    assert.deepEqual(left.members, ['a', 'b']);
    // The shards go back to where they were: minimal movement both ways.
    assert.deepEqual(
      left.moved.map((m) => [m.shard, m.from, m.to]),
      joined.moved.map((m) => [m.shard, 'c', m.from]),
    );
    assert.deepEqual(left.acquired, joined.released);
    await ma.leave();
    await mb.leave();
  });

  test('a member cut off from etcd counts itself out before its key expires', async () => {
    const keyPrefix = uniquePrefix('partition-lost');
    await using proxy = await startProxy(etcd.endpoint);
    await using a = new Etcd({ endpoints: proxy.url, keyPrefix, timeout: 1_000 });
    await using b = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const ga = new Group(a, 'g');
    const ma = await ga.join('a', { ttl: 3 });
    const mb = await new Group(b, 'g').join('b', { ttl: 10 });
    await using pa = await ga.partitioner({ shards: SHARDS, self: ma });
    await using viewB = await new Group(b, 'g').view();
    await eventually(() => assert.deepEqual(pa.members, ['a', 'b']), SOON);
    const mine = pa.mine();
    assert.ok(mine.length > 0);
    const rebalanced = new Promise<Rebalance>((resolve) => pa.once('rebalanced', resolve));
    const atLoss = new Promise<{ mine: string[]; othersSee: boolean }>((resolve) =>
      ma.once('lost', () => resolve({ mine: pa.mine(), othersSee: viewB.has('a') })),
    );
    // Keepalives stop reaching etcd: the session gives up a tenth of the TTL before etcd does.
    await proxy.blackhole();
    const loss = await atLoss;
    assert.deepEqual(loss, { mine: [], othersSee: true });
    const r = await rebalanced;
    assert.deepEqual(r.members, ['b']);
    assert.deepEqual(r.released, mine);
    assert.deepEqual(pa.owned('b'), SHARDS);
    // Then etcd expires the lease and the others see the member go.
    await eventually(() => assert.equal(viewB.has('a'), false), { timeout: 20_000 });
    await proxy.pass();
    await mb.leave();
  });

  test('a filter on capabilities decides who owns keys', async () => {
    const keyPrefix = uniquePrefix('partition-filter');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const group = new Group(client, 'g');
    const cpu = await group.join('cpu-1', { ttl: 10, capabilities: { gpu: 'no' } });
    const gpu = await group.join('gpu-1', { ttl: 10, capabilities: { gpu: 'yes' } });
    await using p = await group.partitioner({
      shards: SHARDS,
      filter: (m) => m.capabilities.gpu === 'yes',
    });
    assert.deepEqual(p.members, ['gpu-1']);
    assert.deepEqual(p.owned('gpu-1'), SHARDS);
    assert.equal(p.owner('anything'), 'gpu-1');
    assert.throws(() => p.mine(), /without self/);
    await cpu.leave();
    await gpu.leave();
    await eventually(() => assert.equal(p.owner('anything'), undefined), SOON);
  });
});
