/**
 * A group member for the kill tests, run as a child process: it joins the
 * group, partitions the shards with its own membership as `self`, and reports
 * over IPC which shards it owns, at the start and after each rebalance.
 */
import { Etcd } from '@etcdkit/client';
import { Group } from '@etcdkit/group';

export interface MemberConfig {
  endpoints: string[];
  keyPrefix: string;
  group: string;
  id: string;
  ttl: number;
  shards: string[];
}

export type MemberMessage =
  | { type: 'owns'; members: string[]; shards: string[] }
  | { type: 'lost'; reason: string };

const config = JSON.parse(process.argv[2] ?? '{}') as MemberConfig;
const send = (message: MemberMessage) => process.send?.(message);
const client = new Etcd({ endpoints: config.endpoints, keyPrefix: config.keyPrefix });
const group = new Group(client, config.group);
const self = await group.join(config.id, { ttl: config.ttl });
self.on('lost', (err) => send({ type: 'lost', reason: err.message }));
const partitioner = await group.partitioner({ shards: config.shards, self });
const report = () =>
  send({ type: 'owns', members: [...partitioner.members], shards: partitioner.mine() });
partitioner.on('rebalanced', report);
report();
process.on('disconnect', () => void client.close().finally(() => process.exit(0)));
