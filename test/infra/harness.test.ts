import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { findEtcd, startEtcd } from '@etcdkit/harness';

test('a single member starts healthy on loopback and is removed on close', async () => {
  const cluster = await startEtcd();
  const member = cluster.members[0]!;
  assert.match(cluster.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${cluster.endpoint}/health`);
  assert.deepEqual(await res.json(), { health: 'true' });
  assert.ok(existsSync(member.dataDir));
  await cluster.close();
  assert.equal(member.running, false);
  assert.equal(existsSync(member.dataDir), false);
  await cluster.close(); // idempotent
});

test('a three-member cluster elects a leader and survives a member restart', async () => {
  await using cluster = await startEtcd({ members: 3 });
  assert.equal(new Set(cluster.endpoints).size, 3);
  const leader = await cluster.leader();
  await leader.restart();
  assert.equal(leader.running, true);
  const res = await fetch(`${leader.clientUrl}/health`);
  assert.deepEqual(await res.json(), { health: 'true' });
});

test('a missing etcd binary fails with install advice', () => {
  const saved = process.env.ETCD_BIN;
  const savedPath = process.env.PATH;
  try {
    delete process.env.ETCD_BIN;
    process.env.PATH = '/nonexistent';
    assert.throws(() => findEtcd(), /apt-get install -y etcd-server/);
  } finally {
    if (saved === undefined) delete process.env.ETCD_BIN;
    else process.env.ETCD_BIN = saved;
    process.env.PATH = savedPath;
  }
});
