// Member hang: SIGSTOP freezes a member; TCP still connects, nothing answers. The frozen member is
// first in the client's endpoints, and the client has a short deadline: the hang should cost
// about one deadline, after which reads, writes, the watch and the session's keepalives go on
// elsewhere. The time lost is printed; only the number of failed calls is asserted.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@etcdkit/client';
import { uniquePrefix } from '@etcdkit/harness';
import { type ProxiedCluster, startProxiedCluster } from './cluster.js';
import { Scenario } from './scenario.js';
import { ms } from './workload.js';

const DEADLINE_MS = 1_000;
/** The hang lasts less than the session TTL (4 s). */
const HANG_MS = 3_000;

let pc: ProxiedCluster;
before(async () => {
  pc = await startProxiedCluster({ members: 3 });
});
after(async () => {
  await pc?.close();
});

test('a hung member costs a read at most one deadline', async (t) => {
  const hung = await pc.followerIndex();
  await using client = createClient({
    endpoints: pc.endpointsFrom(hung),
    keyPrefix: uniquePrefix('hang-read'),
    codec: 'string',
    timeout: DEADLINE_MS,
  });
  await client.set('k', 'v');
  assert.equal((await client.get('k'))?.value, 'v');
  pc.members[hung]!.pause();
  const start = performance.now();
  let failures = 0;
  let value: string | undefined;
  const errors: string[] = [];
  try {
    // At most a handful of reads: a client that never moves on fails here, not by a timeout.
    for (let attempt = 0; attempt < 6 && value === undefined; attempt++) {
      try {
        value = (await client.get('k'))?.value;
      } catch (err) {
        failures++;
        errors.push((err as Error).message);
      }
    }
  } finally {
    pc.members[hung]!.resume();
  }
  const lost = performance.now() - start;
  t.diagnostic(
    `member hang (read): ${value === undefined ? 'no read succeeded' : 'read succeeded'} after ${ms(lost)} ` +
      `(deadline ${DEADLINE_MS} ms), ${failures} failed reads${errors[0] ? `: ${errors[0]}` : ''}`,
  );
  assert.equal(value, 'v', 'a read succeeds on another member');
  assert.ok(failures <= 1, `${failures} reads failed before one succeeded; at most one may`);
});

for (const role of ['follower', 'leader'] as const) {
  test(`a hung ${role}: writes, watch and session continue on the others`, async (t) => {
    const hung = role === 'leader' ? await pc.leaderIndex() : await pc.followerIndex();
    const s = await Scenario.begin({
      label: `hang-${role}`,
      endpoints: pc.endpointsFrom(hung),
      direct: pc.cluster.endpoints,
      timeout: DEADLINE_MS,
      sessionTtl: 4,
    });
    s.fault();
    pc.members[hung]!.pause();
    try {
      await sleep(HANG_MS);
    } finally {
      pc.members[hung]!.resume();
      s.healed();
    }
    await s.writesRecovered();
    // 3 s of hang against a 4 s TTL renewed every 1.3 s: only a keepalive sent elsewhere
    // during the hang keeps the session in every phase.
    await s.finish(t, `member hang (${role})`, { renewDuringFault: true });
  });
}
