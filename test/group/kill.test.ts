// Faults: a member process SIGKILLed hands its shards to the survivors once
// its lease expires, and only its shards move; with a member of a 3-member
// etcd cluster killed, every view still converges to the same membership.
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Group, type GroupView, type Member } from '@etcdkit/group';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import type { MemberConfig, MemberMessage } from './member.js';

const SHARDS = Array.from({ length: 30 }, (_, i) => `shard-${i}`);
const MEMBER_SCRIPT = new URL('./member.js', import.meta.url);

/** A member process and the last report it sent. */
class MemberProcess {
  readonly proc: ChildProcess;
  last: Extract<MemberMessage, { type: 'owns' }> | undefined;
  lost: string | undefined;
  readonly id: string;

  constructor(config: MemberConfig) {
    this.id = config.id;
    this.proc = fork(MEMBER_SCRIPT, [JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m: MemberMessage) => {
      if (m.type === 'owns') this.last = m;
      else this.lost = m.reason;
    });
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGKILL');
    await exited;
  }
}

const clusters: EtcdCluster[] = [];
const children: MemberProcess[] = [];
after(async () => {
  await Promise.all(children.map((c) => c.kill()));
  await Promise.all(clusters.map((c) => c.close()));
});

/** Every shard owned by exactly one of `members`, as each of them reports it. */
function assertPartition(members: MemberProcess[], ids: string[]): void {
  const owned = members.flatMap((m) => {
    assert.equal(m.lost, undefined, `${m.id} lost its lease`);
    assert.deepEqual(m.last?.members, ids, `as ${m.id} sees it`);
    return m.last!.shards;
  });
  assert.deepEqual([...owned].sort(), [...SHARDS].sort());
}

describe('group members under faults', () => {
  test('a SIGKILLed member process: after its lease expires, only its shards move to the survivors', async () => {
    const etcd = await startEtcd();
    clusters.push(etcd);
    const keyPrefix = uniquePrefix('group-kill');
    const base = { endpoints: etcd.endpoints, keyPrefix, group: 'workers', shards: SHARDS };
    // The victim's lease is short, so its expiry comes soon; the survivors' are long, so a
    // loaded machine cannot make them lose theirs.
    const members = ['m0', 'm1', 'm2'].map(
      (id) => new MemberProcess({ ...base, id, ttl: id === 'm1' ? 4 : 15 }),
    );
    children.push(...members);
    await eventually(() => assertPartition(members, ['m0', 'm1', 'm2']), { timeout: 60_000 });
    const before = new Map(members.map((m) => [m, m.last!.shards]));

    await using observer = new Etcd({ endpoints: etcd.endpoints, keyPrefix });
    await using view = await new Group(observer, 'workers').view();
    assert.deepEqual(
      view.members().map((m) => m.id),
      ['m0', 'm1', 'm2'],
    );
    const left = new Promise<Member>((resolve) => view.once('left', resolve));
    const victim = members[1]!;
    await victim.kill();
    const survivors = [members[0]!, members[2]!];
    assert.equal((await left).id, 'm1');
    await eventually(() => assertPartition(survivors, ['m0', 'm2']), { timeout: 60_000 });
    // Minimal movement: each survivor kept what it had, and took only some of m1's shards.
    const victimShards = before.get(victim)!;
    for (const survivor of survivors) {
      const had = before.get(survivor)!;
      const has = survivor.last!.shards;
      for (const shard of had)
        assert.ok(has.includes(shard), `${shard} moved away from a survivor`);
      for (const shard of has)
        assert.ok(had.includes(shard) || victimShards.includes(shard), `${shard} moved needlessly`);
    }
    assert.ok(survivors.every((s) => s.lost === undefined));
    await Promise.all(members.map((m) => m.kill()));
  });

  test('a member of a 3-member cluster killed: the views of clients on every member still converge', async () => {
    const cluster = await startEtcd({ members: 3 });
    clusters.push(cluster);
    const keyPrefix = uniquePrefix('group-cluster');
    const endpoints = cluster.endpoints;
    // Client i talks to member i first, and fails over to the others.
    const clients = endpoints.map(
      (_, i) =>
        new Etcd({
          endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)],
          keyPrefix,
          timeout: 2_000,
        }),
    );
    const views: GroupView[] = [];
    try {
      for (const client of clients) views.push(await new Group(client, 'g').view());
      const memberships = await Promise.all(
        clients.map((client, i) => new Group(client, 'g').join(`c${i}`, { ttl: 15 })),
      );
      const idsOf = (view: GroupView) => view.members().map((m) => m.id);
      await eventually(
        () => {
          for (const view of views) assert.deepEqual(idsOf(view), ['c0', 'c1', 'c2']);
        },
        { timeout: 30_000 },
      );

      const leader = await eventually(() => cluster.leader(), { timeout: 15_000 });
      const victim = cluster.members.find((m) => m !== leader) ?? leader;
      await victim.kill();
      // Changes made after the kill, through clients whose first member may be the dead one.
      await memberships[0]!.leave();
      const late = await new Group(clients[1]!, 'g').join('late', { ttl: 15 });
      await eventually(
        () => {
          for (const view of views) assert.deepEqual(idsOf(view), ['c1', 'c2', 'late']);
        },
        { timeout: 60_000 },
      );
      await late.leave();
      await Promise.all(memberships.slice(1).map((m) => m.leave()));
    } finally {
      await Promise.all(views.map((v) => v.close()));
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
