// Whole-cluster restart: all three members are killed, stay down a moment, and start again on
// their data. The client, its watcher and its session (TTL well above the outage) carry on.

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

test('whole-cluster restart: client, watcher and session continue', async (t) => {
  const s = await Scenario.begin({
    label: 'restart',
    endpoints: pc.endpoints,
    direct: pc.cluster.endpoints,
    timeout: 2_000,
    sessionTtl: 30,
  });
  const all = pc.members.map((_, i) => i);
  s.fault();
  await Promise.all(all.map((i) => pc.kill(i)));
  await sleep(1_000); // the outage itself
  await Promise.all(all.map((i) => pc.start(i)));
  s.healed();
  await s.writesRecovered();
  await s.finish(t, 'whole-cluster restart');
});
