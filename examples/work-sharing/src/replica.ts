/**
 * One replica: joins the group of workers and works on the shards the
 * partitioner gives it. It reports what it owns as a JSON line at the start
 * and after every rebalance, and stops working on everything the moment its
 * membership ends.
 */
import { createClient } from '@etcdkit/client';
import { Group } from '@etcdkit/group';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const name = process.env.REPLICA_NAME ?? `replica-${process.pid}`;
const prefix = process.env.EXAMPLE_PREFIX ?? 'examples/work-sharing/';
const ttl = Number(process.env.SESSION_TTL ?? 2);
const shards = (process.env.SHARDS ?? 'shard-0,shard-1,shard-2').split(',');

const report = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ replica: name, ...event })}\n`);

const etcd = createClient({ endpoints, keyPrefix: prefix });
const workers = new Group(etcd, 'workers');
const self = await workers.join(name, { ttl, capabilities: { pid: String(process.pid) } });
self.once('lost', () => report({ event: 'lost' }));
await using partitioner = await workers.partitioner({ shards, self });

report({ event: 'owns', shards: partitioner.mine(), members: partitioner.members });
partitioner.on('rebalanced', ({ members, acquired, released }) =>
  report({ event: 'owns', shards: partitioner.mine(), members, acquired, released }),
);

// SIGTERM: leave at once, so the others take over the shards without waiting for the lease.
await new Promise((resolve) => process.once('SIGTERM', resolve));
await self.leave();
await etcd.close();
