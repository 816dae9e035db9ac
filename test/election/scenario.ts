/**
 * A fault scenario of the safety tests: replica processes campaign in one
 * election and, while they believe they lead, write a shared resource through
 * their leadership's guard; an observer follows the election and a checker
 * follows the resource. `finish()` checks what safety means:
 * - a replica only announces leadership while every other believer is
 *   stopped (killed or paused): at every moment at most one believes it leads;
 * - the resource's history, in etcd's order, has tokens that never decrease
 *   and each token belongs to one replica: no two leaderships overlap;
 * - an observer sees every leadership, in order, once.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type Candidate, Election, type LeaderInfo } from '@etcdkit/election';
import {
  type EtcdCluster,
  type EtcdMember,
  eventually,
  startEtcd,
  uniquePrefix,
} from '@etcdkit/harness';
import { type Received, Replica } from './helpers.js';

const REPLICAS = 3;

export interface Write {
  token: bigint;
  id: string;
  seq: number;
  revision: bigint;
}

export interface Announcement {
  replica: Replica;
  token: bigint;
  at: number;
}

/** Replicas, an observer and a checker of the fenced resource, around one election. */
export class Scenario {
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

  /** The replica program: replica.js (campaign, then write) or run-replica.js (the same with run()). */
  readonly #script: URL | undefined;

  constructor(endpoints: string[], label: string, script?: URL) {
    this.#script = script;
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
            if (leader) this.observed.push({ ...leader, at: performance.now() });
        } catch (err) {
          if (!signal.aborted) throw err;
        }
      })(),
    );
    for (let i = 0; i < REPLICAS; i++) {
      const replica = new Replica(
        { endpoints, name: this.name, id: `r${i}`, ttl, resource: this.resource },
        this.#script,
      );
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

  /** The election's candidates now, leader first. */
  candidates(): Promise<Candidate[]> {
    return new Election(this.#client, this.name).candidates();
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

export function ms(from: number, to: number): string {
  return `${Math.round(to - from)} ms`;
}

export interface ScenarioSetup {
  /** Labels the keys of the scenario. */
  label: string;
  /** The replicas' session TTL, in seconds. */
  ttl: number;
  /** etcd members: 1 (default) or 3. */
  members?: number;
  /** The replica program (see Scenario's constructor). */
  script?: URL | undefined;
}

/** What a scenario's body is given: the scenario, its etcd, and the raft leader when it started. */
export interface Stage {
  scenario: Scenario;
  cluster: EtcdCluster;
  raftLeader: EtcdMember;
}

/**
 * Starts etcd and a scenario on it, with the raft leader's endpoint first (so
 * every client talks to the member a test may kill), runs `body`, checks the
 * whole run with `finish()`, and stops everything however it ends.
 */
export async function inScenario(
  setup: ScenarioSetup,
  body: (stage: Stage) => Promise<void>,
): Promise<void> {
  const cluster = await startEtcd({ members: setup.members ?? 1 });
  try {
    const raftLeader = await cluster.leader();
    const endpoints = [
      raftLeader.clientUrl,
      ...cluster.endpoints.filter((e) => e !== raftLeader.clientUrl),
    ];
    const scenario = new Scenario(endpoints, setup.label, setup.script);
    try {
      await scenario.start(endpoints, setup.ttl);
      await body({ scenario, cluster, raftLeader });
      await scenario.finish();
    } catch (err) {
      await scenario.abandon();
      throw err;
    }
  } finally {
    await cluster.close();
  }
}

/**
 * The raft leader of a 3-member cluster is killed while a replica leads; once
 * some leader writes again, the leading replica is killed too, and another
 * one takes over on the two members left.
 */
export async function raftLeaderKilled(t: TestContext, stage: Stage, ttl: number): Promise<void> {
  const { scenario, cluster, raftLeader } = stage;
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
  assert.notEqual(next.replica, leader.replica);
  const seen = await scenario.observedAt(next.token);
  t.diagnostic(
    `failover after SIGKILL of the leader (TTL ${ttl} s, 2 of 3 members): new leader in ` +
      `${ms(killed, next.at)}, observed in ${ms(killed, seen)}`,
  );
  await scenario.writes(next.token);
}
