// Failover you can choose: the client's `sessionTtl` is the one place that sets
// how long a crashed holder keeps what it held (the shared session's lease,
// `session()` without a TTL, and registrations by default); and primitives
// built on a client take a fresh shared session after theirs was lost.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_SESSION_TTL, Etcd } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Mutex } from '@etcdkit/mutex';
import { Registry } from '@etcdkit/registry';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

test('sessionTtl sets the shared session, session() and registrations; 15 s by default', async () => {
  assert.equal(DEFAULT_SESSION_TTL, 15);
  await using plain = new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('ttl') });
  assert.equal(plain.sessionTtl, 15);
  assert.equal((await plain.sharedSession()).ttl, 15);
  await using chosen = new Etcd({
    endpoints: etcd.endpoint,
    keyPrefix: uniquePrefix('ttl'),
    sessionTtl: 7,
  });
  const lock = await new Mutex(chosen, 'job').lock();
  assert.equal(lock.session.ttl, 7);
  assert.equal((await chosen.timetolive(lock.session.lease))?.grantedTtl, 7);
  assert.equal((await chosen.session()).ttl, 7);
  assert.equal((await chosen.session({ ttl: 9 })).ttl, 9);
  const registry = new Registry(chosen);
  assert.equal(registry.ttl, 7);
  const registration = await registry.register('api', { address: '127.0.0.1', port: 1 });
  assert.equal((await chosen.timetolive(registration.lease!))?.grantedTtl, 7);
  await registration.deregister();
  await lock.release();
  for (const bad of [0, -1, 1.5]) {
    assert.throws(() => new Etcd({ endpoints: etcd.endpoint, sessionTtl: bad }), {
      name: 'InvalidArgumentError',
    });
  }
});

test('a Mutex and an Election on a client take a fresh session after theirs was lost', async () => {
  const keyPrefix = uniquePrefix('fresh');
  await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix, sessionTtl: 5 });
  await using operator = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
  const mutex = new Mutex(client, 'job');
  const election = new Election(client, 'boss');
  const first = await mutex.lock();
  const leading = await election.campaign('me');
  assert.equal(first.session, await client.sharedSession());
  await operator.revoke(first.session.lease);
  await eventually(() => assert.ok(first.signal.aborted && !leading.leading));
  await eventually(() => assert.equal(first.session.alive, false));
  // A long-running worker's next lock and campaign work, on a new lease.
  const second = await mutex.lock();
  assert.notEqual(second.session.lease, first.session.lease);
  assert.ok(second.token > first.token);
  const again = await election.campaign('me');
  assert.equal(again.lease, second.session.lease);
  await again.resign();
  await second.release();
});
