// The run loop under faults: replica processes whose whole life is
// `election.run()` (run-replica.ts), with a work that writes a shared
// resource through its leadership's guard. A replica process SIGKILLed while
// it leads is replaced by another replica's run(); an etcd member killed under
// the loop (the raft leader of 3, which every client talks to first) changes
// nothing of what safety means: at most one replica works at a time, the
// resource's history in etcd's order has tokens that never decrease, and an
// observer sees every leadership in order (Scenario checks all of it).
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { inScenario, ms, raftLeaderKilled } from './scenario.js';

const script = new URL('./run-replica.js', import.meta.url);

test('a leading replica SIGKILLed: another replica’s run() takes over once its lease expires', async (t) => {
  const TTL = 2;
  await inScenario({ label: 'run-kill', ttl: TTL, script }, async ({ scenario }) => {
    const first = await scenario.nextElection(0);
    await scenario.writes(first.token);

    const killedAt = performance.now();
    scenario.stopped.add(first.replica);
    await first.replica.kill();
    const second = await scenario.nextElection(killedAt);
    t.diagnostic(
      `run() took over after SIGKILL of the leader (TTL ${TTL} s) in ${ms(killedAt, second.at)}`,
    );
    assert.notEqual(second.replica, first.replica);
    assert.ok(second.token > first.token);
    await scenario.writes(second.token);
    // The killed replica's key went with its lease; the new leader heads the line.
    const line = (await scenario.candidates()).map((c) => c.value);
    assert.equal(line[0], second.replica.id);
    assert.ok(!line.includes(first.replica.id), line.join(', '));
  });
});

test('the raft leader of 3 members killed under run(): one replica works at a time, fenced', async (t) => {
  const TTL = 3;
  await inScenario({ label: 'run-raft', ttl: TTL, members: 3, script }, (stage) =>
    raftLeaderKilled(t, stage, TTL),
  );
});
