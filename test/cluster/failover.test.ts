import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd, type EtcdError } from '@etcdkit/client';
import {
  type EtcdCluster,
  type EtcdMember,
  eventually,
  startEtcd,
  uniquePrefix,
} from '@etcdkit/harness';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(() => cluster.close());

/** A member that is not the raft leader, and the endpoints with it first. */
async function follower(): Promise<{ member: EtcdMember; endpoints: string[] }> {
  const leader = await cluster.leader();
  const member = cluster.members.find((m) => m !== leader)!;
  const others = cluster.members.filter((m) => m !== member).map((m) => m.clientUrl);
  return { member, endpoints: [member.clientUrl, ...others] };
}

describe('endpoints and failover', () => {
  test('a killed member is marked down, calls move on, and it is marked up when back', async (t) => {
    const { member, endpoints } = await follower();
    // No call before the kill, so no pooled connection to the member survives it
    // (a write sent on one would rightly be indeterminate): the first write meets
    // a refused connection. The API prefix is given, so that write is the first call.
    await using client = new Etcd({
      endpoints,
      apiPrefix: '/v3',
      keyPrefix: uniquePrefix('failover'),
    });
    const down: string[] = [];
    const up: string[] = [];
    client.on('endpoint-down', (url) => down.push(url));
    client.on('endpoint-up', (url) => up.push(url));
    await member.kill();
    try {
      const started = performance.now();
      for (let i = 1; i <= 20; i++) await client.set('k', i); // refused by the dead member: moved on
      assert.equal((await client.get('k'))?.value, 20);
      t.diagnostic(`20 writes after the kill took ${Math.round(performance.now() - started)} ms`);
      assert.deepEqual(down, [member.clientUrl]);
    } finally {
      member.start('existing');
      await member.waitHealthy(30_000);
    }
    await eventually(() => assert.deepEqual(up, [member.clientUrl]), { timeout: 15_000 });
  });

  test('a hung member costs one deadline, then calls avoid it', async (t) => {
    const { member, endpoints } = await follower();
    await using client = new Etcd({ endpoints, keyPrefix: uniquePrefix('hang'), timeout: 1000 });
    await client.set('k', 'v');
    member.pause();
    try {
      const started = performance.now();
      const outcomes: string[] = [];
      for (let i = 0; i < 10; i++) {
        try {
          await client.get('k');
          outcomes.push('ok');
        } catch (err) {
          outcomes.push((err as EtcdError).name);
        }
      }
      t.diagnostic(
        `10 reads with the first endpoint hung: ${outcomes.join(' ')} in ${Math.round(performance.now() - started)} ms`,
      );
      // The read that met the hung member fails at its deadline; every later one is served elsewhere.
      assert.deepEqual(outcomes, ['TimeoutError', ...Array(9).fill('ok')]);
    } finally {
      member.resume();
    }
  });

  test('a write refused everywhere is never indeterminate, and nothing is applied twice', async () => {
    const prefix = uniquePrefix('refused');
    await using client = new Etcd({
      endpoints: cluster.endpoints,
      keyPrefix: prefix,
      timeout: 3000,
    });
    await client.set('count', 0);
    await Promise.all(cluster.members.map((m) => m.kill()));
    try {
      // A fresh client has no pooled connection a killed member closed under it
      // (a request written to one is rightly indeterminate): every attempt meets
      // a refused connection. The API prefix is given, so the write itself is tried.
      await using fresh = new Etcd({
        endpoints: cluster.endpoints,
        apiPrefix: '/v3',
        keyPrefix: prefix,
        timeout: 3000,
      });
      const down: string[] = [];
      fresh.on('endpoint-down', (url) => down.push(url));
      await assert.rejects(
        fresh.set('count', 1),
        (err: EtcdError) =>
          err.name === 'UnavailableError' &&
          !err.indeterminate &&
          cluster.endpoints.every((url) => err.message.includes(url)),
      );
      assert.deepEqual([...down].sort(), [...cluster.endpoints].sort(), 'every member was tried');
    } finally {
      for (const m of cluster.members) m.start('existing');
      await Promise.all(cluster.members.map((m) => m.waitHealthy(30_000)));
    }
    await eventually(async () => assert.equal((await client.get('count'))?.value, 0));
  });
});

describe('member-list sync', () => {
  test('a client given one endpoint learns the others and survives the loss of the first', async () => {
    const { member } = await follower();
    await using client = new Etcd({ endpoints: member.clientUrl, keyPrefix: uniquePrefix('sync') });
    const learnt = await client.syncEndpoints();
    assert.deepEqual([...learnt].sort(), [...cluster.endpoints].sort());
    await client.set('k', 1);
    await member.kill();
    try {
      // A read first: one sent on a pooled connection the kill closed moves on,
      // where a write would rightly be indeterminate.
      assert.equal((await client.get('k'))?.value, 1);
      await client.set('k', 2);
      assert.equal((await client.get('k'))?.value, 2);
    } finally {
      member.start('existing');
      await member.waitHealthy(30_000);
    }
  });

  test('autoSyncInterval keeps the endpoints learnt', async () => {
    await using client = new Etcd({ endpoints: cluster.endpoint, autoSyncInterval: 100 });
    await eventually(() => assert.equal(client.endpoints.length, 3));
  });
});
