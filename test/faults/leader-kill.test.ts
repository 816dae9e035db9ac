// Leader kill: the member the client talks to, and the raft leader, is SIGKILLed under load.

import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ProxiedCluster, startProxiedCluster } from './cluster.js';
import { Scenario } from './scenario.js';

let pc: ProxiedCluster;
before(async () => {
  pc = await startProxiedCluster({ members: 3 });
});
after(async () => {
  await pc?.close();
});

test('leader kill: writes, reads, watch and session move to the new leader', async (t) => {
  const leader = await pc.leaderIndex();
  const s = await Scenario.begin({
    label: 'leader-kill',
    endpoints: pc.endpointsFrom(leader),
    direct: pc.cluster.endpoints,
    timeout: 2_000,
    sessionTtl: 5,
  });
  s.fault();
  await pc.kill(leader);
  // The dead member stays down while the client has to do without it.
  await s.writesRecovered();
  await sleep(1_000);
  await pc.start(leader);
  s.healed();
  await sleep(500); // some load on the healed cluster too
  await s.finish(t, 'leader kill');
});
