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
import { eventually } from '@etcdkit/harness';
import { inScenario, ms, raftLeaderKilled } from './scenario.js';

test('leader killed, then leader paused past its TTL: one leader at a time, fenced, observed', async (t) => {
  const TTL = 2;
  await inScenario({ label: 'safety', ttl: TTL }, async ({ scenario }) => {
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
  });
});

test('etcd raft leader killed in a 3-member cluster: one leader at a time, fenced, observed', async (t) => {
  const TTL = 3;
  await inScenario({ label: 'raft', ttl: TTL, members: 3 }, (stage) =>
    raftLeaderKilled(t, stage, TTL),
  );
});
