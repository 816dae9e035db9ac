// A process that holds everything a client can hold: a session of its own, the
// shared session under a held Mutex and a leadership, a registry registration,
// a watcher and a mirror.
// It prints what it holds as one JSON line, then calls close() and lets the
// process end by itself: nothing may keep it alive.
import { Etcd } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { Mutex } from '@etcdkit/mutex';
import { Registry } from '@etcdkit/registry';

const [endpoint = '', keyPrefix = ''] = process.argv.slice(2);
const client = new Etcd({ endpoints: endpoint, keyPrefix });
const lost: string[] = [];
const session = await client.session({ ttl: 60 });
session.on('lost', () => lost.push('session'));
const lock = await new Mutex(client, 'jobs').lock();
lock.on('lost', () => lost.push('lock'));
const leadership = await new Election(client, 'leader').campaign('me');
leadership.on('lost', () => lost.push('leadership'));
const shared = await client.sharedSession();
shared.on('lost', () => lost.push('shared'));
const registration = await new Registry(client, { ttl: 60 }).register('api', {
  id: 'one',
  address: '127.0.0.1',
  port: 7000,
});
registration.on('lost', () => lost.push('registration'));
const watcher = await client.watchdir('jobs/');
const mirror = await client.mirror('/services/');
process.stdout.write(
  `${JSON.stringify({
    leases: [session.lease, shared.lease, registration.lease].map(String),
    lockKey: lock.key,
    leaderKey: leadership.key,
    registrationKey: registration.key,
  })}\n`,
);
await client.close();
process.stdout.write(
  `${JSON.stringify({
    closed: true,
    lost,
    lockSignalAborted: lock.signal.aborted,
    leadershipSignalAborted: leadership.signal.aborted,
    watcherEnd: watcher.endReason,
    mirrorSize: mirror.size,
  })}\n`,
);
