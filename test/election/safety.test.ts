// Safety under faults: replica processes campaign in one election and, while
// they believe they lead, write a shared resource through their leadership's
// guard. Across a killed leader process, a leader paused past its TTL and a
// killed etcd raft leader, the test checks that
// - a replica only announces leadership while every other believer is
//   stopped (killed or paused): at every moment at most one believes it leads;
// - the resource's history, in etcd's order, has tokens that never decrease
//   and each token belongs to one replica: no two leaderships overlap;
// - a paused leader, once resumed, notices it lost and none of its writes pass;
// - an observer sees every leadership, in order, once.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Election, type LeaderInfo } from '@etcdkit/election';
import { eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Received, Replica } from './helpers.js';

const REPLICAS = 3;

interface Write {
  token: bigint;
  id: string;
  seq: number;
  revision: bigint;
}

interface Announcement {
  replica: Replica;
  token: bigint;
  at: number;
}

/** Replicas, an observer and a checker of the fenced resource, around one election. */
class Scenario {
  readonly name: string;
  readonly resource: string;
  readonly replicas: Replica[] = [];
  readonly elections: Announcement[] = [];
  readonly observed: Array<LeaderInfo & { at: number }> = [];
  readonly history: Write[] = [];
  readonly violations: string[] = [];
  /** Replicas the test has killed or paused: they may still believe they lead. */
  readonly stopped = new Set<Replica>();
  readonly #client: Etcd;
  readonly #abort = new AbortController();
  #tasks: Promise<void>[] = [];

  constructor(endpoints: string[], label: string) {
    const prefix = uniquePrefix(label);
    this.name = `${prefix}election`;
    this.resource = `${prefix}resource`;
    this.#client = new Etcd({ endpoints });
  }

  async start(endpoints: string[], ttl: number): Promise<void> {
    const signal = this.#abort.signal;
    const watcher = await this.#client.watch(this.resource, { signal });
    this.#tasks.push(
      (async () => {
        try {
          for await (const e of watcher.events()) {
            const v = e.kv.value as { token: string; id: string; seq: number };
            const write = { token: BigInt(v.token), id: v.id, seq: v.seq };
            this.history.push({ ...write, revision: e.kv.modRevision });
          }
        } catch (err) {
          if (!signal.aborted) throw err;
        }
      })(),
    );
    const election = new Election(this.#client, this.name);
    this.#tasks.push(
      (async () => {
        try {
          for await (const leader of election.observe({ signal }))
            this.observed.push({ ...leader, at: performance.now() });
        } catch (err) {
          if (!signal.aborted) throw err;
        }
      })(),
    );
    for (let i = 0; i < REPLICAS; i++) {
      const replica = new Replica({
        endpoints,
        name: this.name,
        id: `r${i}`,
        ttl,
        resource: this.resource,
      });
      replica.proc.on('message', () => this.#check(replica));
      this.replicas.push(replica);
    }
  }

  /** On each report: a new leader while another running replica still believes it leads is a violation. */
  #check(replica: Replica): void {
    const last = replica.received.at(-1) as Received;
    if (last.type !== 'elected') return;
    this.elections.push({ replica, token: BigInt(last.token), at: last.at });
    for (const other of this.replicas) {
      if (other !== replica && other.believesLeading && !this.stopped.has(other)) {
        this.violations.push(
          `${replica.id} was elected (token ${last.token}) while ${other.id} believed it leads`,
        );
      }
    }
  }

  /** The first election announced after the monotonic time `after`. */
  nextElection(after: number, timeout = 20_000): Promise<Announcement> {
    return eventually(
      () => {
        const found = this.elections.find((e) => e.at > after);
        assert.ok(found, 'no replica was elected yet');
        return found;
      },
      { timeout },
    );
  }

  /** Resolves once the observer has seen `token`; returns when it saw it. */
  observedAt(token: bigint, timeout = 20_000): Promise<number> {
    return eventually(
      () => {
        const found = this.observed.find((l) => l.token === token);
        assert.ok(found, `the observer has not seen token ${token}`);
        return found.at;
      },
      { timeout },
    );
  }

  /** Waits until `token` has written the resource a few more times. */
  async writes(token: bigint, count = 3): Promise<void> {
    const start = this.history.filter((w) => w.token === token).length;
    await eventually(() => {
      const now = this.history.filter((w) => w.token === token).length;
      assert.ok(now >= start + count, `token ${token} wrote ${now - start} times`);
    });
  }

  /** Stops every replica and the observer, then checks the whole run. */
  async finish(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.kill()));
    // Let the checker catch up with the last write before it stops.
    const last = await this.#client.get(this.resource);
    if (last) {
      await eventually(() =>
        assert.equal(this.history.at(-1)?.revision, last.modRevision, 'history caught up'),
      );
    }
    this.#abort.abort();
    await Promise.all(this.#tasks);
    await this.#client.close();

    assert.deepEqual(this.violations, []);
    assert.ok(this.history.length > 0, 'some leader wrote the resource');
    for (let i = 1; i < this.history.length; i++) {
      const [prev, next] = [this.history[i - 1]!, this.history[i]!];
      assert.ok(
        next.token >= prev.token,
        `a write with token ${next.token} passed after one with token ${prev.token}`,
      );
      if (next.token === prev.token) assert.equal(next.id, prev.id, `token ${next.token} is one`);
    }
    // The observer saw every leadership, in order, once each.
    const seen = this.observed.map((l) => l.token);
    for (let i = 1; i < seen.length; i++)
      assert.ok(seen[i]! > seen[i - 1]!, `observed tokens in order: ${seen.join(', ')}`);
    for (const e of this.elections)
      assert.ok(seen.includes(e.token), `the observer saw ${e.replica.id}'s token ${e.token}`);
    for (const w of this.history)
      assert.ok(seen.includes(w.token), `the observer saw token ${w.token}, which wrote`);
  }

  /** Cleanup when a test fails half-way. */
  async abandon(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.kill()));
    this.#abort.abort();
    await Promise.allSettled(this.#tasks);
    await this.#client.close();
  }
}

function ms(from: number, to: number): string {
  return `${Math.round(to - from)} ms`;
}

test('leader killed, then leader paused past its TTL: one leader at a time, fenced, observed', async (t) => {
  const TTL = 2;
  const cluster = await startEtcd();
  const scenario = new Scenario(cluster.endpoints, 'safety');
  try {
    await scenario.start(cluster.endpoints, TTL);
    const first = await scenario.nextElection(0);
    await scenario.writes(first.token);
    await scenario.observedAt(first.token);

    // The leader process is killed: its key lives until its lease expires.
    const killedAt = performance.now();
    scenario.stopped.add(first.replica);
    await first.replica.kill();
    const second = await scenario.nextElection(killedAt);
    const secondSeen = await scenario.observedAt(second.token);
    t.diagnostic(
      `failover after SIGKILL of the leader (TTL ${TTL} s): new leader in ${ms(killedAt, second.at)}, ` +
        `observed in ${ms(killedAt, secondSeen)}`,
    );
    assert.ok(second.token > first.token);
    await scenario.writes(second.token);

    // The leader process is frozen past its TTL: another takes over meanwhile.
    const paused = second.replica;
    const pausedAt = performance.now();
    scenario.stopped.add(paused);
    paused.pause();
    const third = await scenario.nextElection(pausedAt);
    t.diagnostic(
      `failover after SIGSTOP of the leader (TTL ${TTL} s): new leader in ${ms(pausedAt, third.at)}`,
    );
    assert.notEqual(third.replica, paused);
    await scenario.writes(third.token);
    // Keep it frozen well past its TTL, as a long GC pause or a suspended VM would be.
    await eventually(() => assert.ok(performance.now() - pausedAt > TTL * 1000 + 500), {
      timeout: TTL * 1000 + 5_000,
    });

    // Resumed, it must notice the loss before it writes again, and write nothing.
    const from = paused.received.length;
    const resumedAt = performance.now();
    paused.resume();
    const lost = await paused.next(
      (m) => m.type === 'lost' && BigInt(m.token) === second.token,
      10_000,
      from,
    );
    scenario.stopped.delete(paused);
    const after = paused.received.slice(from);
    const fenced = after.filter((m) => m.type === 'fenced').length;
    // In etcd's order, none of its writes passed once the next leader had written.
    const takeover = scenario.history.find((w) => w.token === third.token)!.revision;
    assert.deepEqual(
      scenario.history.filter((w) => w.token === second.token && w.revision > takeover),
      [],
      'no write of the paused leader passed after the takeover',
    );
    // A write it reports after the resume is one that passed before the pause
    // (its answer arrived just before the freeze, its report just after).
    for (const m of after) {
      if (m.type !== 'wrote' || BigInt(m.token) !== second.token) continue;
      assert.ok(
        scenario.history.some(
          (w) => w.token === second.token && w.seq === m.seq && w.revision < takeover,
        ),
        `write ${m.seq} of the paused leader, reported after the resume, passed before the takeover`,
      );
    }
    t.diagnostic(
      `the leader was paused for ${ms(pausedAt, resumedAt)}; once resumed it noticed its loss in ${ms(resumedAt, lost.at)} ` +
        `(${lost.type === 'lost' ? lost.reason : ''}); ${fenced} fenced write(s) refused`,
    );
    // The current leader is unaffected and keeps writing.
    await scenario.writes(third.token);
    await scenario.finish();
  } catch (err) {
    await scenario.abandon();
    throw err;
  } finally {
    await cluster.close();
  }
});

test('etcd raft leader killed in a 3-member cluster: one leader at a time, fenced, observed', async (t) => {
  const TTL = 3;
  const cluster = await startEtcd({ members: 3 });
  // Put the raft leader first, so every client is connected to the member that dies.
  const raftLeader = await cluster.leader();
  const endpoints = [
    raftLeader.clientUrl,
    ...cluster.endpoints.filter((e) => e !== raftLeader.clientUrl),
  ];
  const scenario = new Scenario(endpoints, 'raft');
  try {
    await scenario.start(endpoints, TTL);
    const first = await scenario.nextElection(0);
    await scenario.writes(first.token);

    const killedAt = performance.now();
    await raftLeader.kill();
    const newRaftLeader = await eventually(() => cluster.leader(), { timeout: 15_000 });
    // Some leader writes again after the raft failover.
    const writesBefore = scenario.history.length;
    await eventually(() => assert.ok(scenario.history.length > writesBefore + 3), {
      timeout: 20_000,
    });
    const current = scenario.history.at(-1)!.token;
    t.diagnostic(
      `raft leader ${raftLeader.name} killed; ${newRaftLeader.name} leads etcd; writes resumed ` +
        `within ${ms(killedAt, performance.now())}; election leader ` +
        (current === first.token ? 'kept its leadership' : `changed (token ${current})`),
    );

    // Then the election's leader process dies too, on the 2-member cluster.
    const leader = scenario.elections.findLast((e) => e.token === current)!;
    const killed = performance.now();
    scenario.stopped.add(leader.replica);
    await leader.replica.kill();
    const next = await scenario.nextElection(killed);
    const seen = await scenario.observedAt(next.token);
    t.diagnostic(
      `failover after SIGKILL of the leader (TTL ${TTL} s, 2 of 3 members): new leader in ` +
        `${ms(killed, next.at)}, observed in ${ms(killed, seen)}`,
    );
    await scenario.writes(next.token);
    await scenario.finish();
  } catch (err) {
    await scenario.abandon();
    throw err;
  } finally {
    await cluster.close();
  }
});
