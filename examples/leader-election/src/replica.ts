/**
 * One replica: campaigns, and while it leads, does the work — a numbered
 * "tick" written to etcd under the leadership's fence — until its leadership
 * ends. Reports each step as a JSON line.
 */
import { createClient, Op } from '@etcdkit/client';
import { Election } from '@etcdkit/election';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const name = process.env.REPLICA_NAME ?? `replica-${process.pid}`;
const prefix = process.env.EXAMPLE_PREFIX ?? 'examples/election/';
const ttl = Number(process.env.SESSION_TTL ?? 2);

const report = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ replica: name, ...event })}\n`);

const etcd = createClient({ endpoints, keyPrefix: prefix });
const session = await etcd.session({ ttl });
const election = new Election(session, 'leader');
const leadership = await election.campaign(name);
report({ event: 'elected', token: String(leadership.token) });

// The work only the leader does: each tick is written only while this replica still leads.
while (leadership.leading) {
  const last = (await etcd.get('ticks'))?.value;
  const tick = (typeof last === 'number' ? last : 0) + 1;
  const write = await etcd.txn().if(leadership.guard()).success(Op.put('ticks', tick)).commit();
  if (!write.succeeded) break;
  report({ event: 'tick', tick, token: String(leadership.token) });
  await new Promise((resolve) => setTimeout(resolve, 200));
}
report({ event: 'stepped-down' });
await session.close();
await etcd.close();
