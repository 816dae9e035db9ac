// Mutual exclusion while the etcd leader is killed: three worker processes with
// five lockers each on a three-member cluster, judged by the fenced resource.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type EtcdCluster, eventually, startEtcd } from '@etcdkit/harness';
import { expectQueue } from './helpers.js';
import { Scenario } from './workers.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

test('killing the leader never lets two holders in', async (t) => {
  await using scenario = await Scenario.start({
    label: 'failover',
    endpoints: cluster.endpoints,
  });
  await scenario.waitForSections(30);
  const leader = await cluster.leader();
  const before = scenario.checker.completed;
  const killedAt = performance.now();
  await leader.kill('SIGKILL');
  await scenario.waitForSections(before + 30);
  const firstAfter = [...scenario.checker.sections.values()].find(
    (s) => s.enteredAt > killedAt && s.exitedAt !== undefined,
  );
  assert.ok(firstAfter);
  t.diagnostic(
    `the first section entered after the leader was killed completed ` +
      `${Math.round(firstAfter.exitedAt! - killedAt)} ms after the kill`,
  );
  const newLeader = await eventually(() => cluster.leader(), { timeout: 30_000 });
  assert.notEqual(newLeader, leader);
  leader.start('existing');
  await leader.waitHealthy(30_000);
  await scenario.waitForSections(scenario.checker.completed + 15);
  await scenario.stop();
  t.diagnostic(
    `${scenario.checker.sections.size} sections, ${scenario.writes.length} fenced etcd writes; ` +
      `worker problems: ${scenario.problemSummary()}`,
  );
  for (const p of scenario.problems()) t.diagnostic(`${p.worker} ${p.where}: ${p.error}`);
  for (const r of scenario.reports()) {
    if (r.writeError) t.diagnostic(`${r.id} (token ${r.token}) write: ${r.writeError}`);
  }
  assert.deepEqual(scenario.checker.overlaps, []);
  assert.deepEqual(scenario.checker.refused, []);
  scenario.assertSafe();
  await expectQueue(scenario.client, scenario.name, []);
});
