// Sessions across a raft leader change: etcd's new leader keeps every lease
// (it renews them all on taking office), so a session should end only when its
// lease could really have expired. Per TTL, sessions on clients that talk to
// the leader first see it SIGKILLed; the test counts sessions the client gave
// up, and among them those whose lease etcd still held (given up too early).
// The watchdog may give up only when the lease could have expired: a lease it
// gave up on that etcd still holds is a false loss, which must not happen for
// TTLs well above the election time; the rates are printed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, type Session } from '@etcdkit/client';
import { type EtcdCluster, startEtcd } from '@etcdkit/harness';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(() => cluster.close());

const SESSIONS = 4;

/** Rounds per TTL: leader kills, each with fresh sessions. */
const ROUNDS: Record<number, number> = { 2: 3, 5: 2, 10: 2 };

/** Kills the leader under `SESSIONS` fresh sessions; returns those given up, and how many of their leases live. */
async function round(ttl: number): Promise<{ lost: number; falsely: number }> {
  const leader = await cluster.leader();
  const others = cluster.members.filter((m) => m !== leader).map((m) => m.clientUrl);
  const clients = Array.from(
    { length: SESSIONS },
    () => new Etcd({ endpoints: [leader.clientUrl, ...others], timeout: 2_000 }),
  );
  await using checker = new Etcd({ endpoints: others });
  try {
    const sessions: Session[] = [];
    for (const client of clients) sessions.push(await client.session({ ttl }));
    await leader.kill();
    // Long enough for a new leader, reconnects, and more than one TTL after.
    await sleep(ttl * 1_000 + 3_000);
    let lost = 0;
    let falsely = 0;
    for (const s of sessions) {
      const held = (await checker.timetolive(s.lease)) !== undefined;
      if (s.state === 'lost') {
        lost++;
        if (held) falsely++;
      } else assert.ok(held, 'a session that lives has its lease');
    }
    return { lost, falsely };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    leader.start('existing');
    await leader.waitHealthy(30_000);
  }
}

for (const ttl of [2, 5, 10]) {
  test(`leader SIGKILL with session TTL ${ttl} s: sessions given up, and given up too early`, async (t) => {
    const rounds = ROUNDS[ttl] ?? 1;
    let lost = 0;
    let falsely = 0;
    for (let i = 0; i < rounds; i++) {
      const r = await round(ttl);
      lost += r.lost;
      falsely += r.falsely;
    }
    t.diagnostic(
      `TTL ${ttl} s, ${rounds} leader kills: ${lost} of ${rounds * SESSIONS} sessions given up, ` +
        `${falsely} of them while etcd still held the lease`,
    );
    if (ttl >= 5) assert.equal(lost, 0, `TTL ${ttl} s rides out a leader election`);
  });
}
