/**
 * One replica. Its whole life is `election.run()`: campaign, and while it
 * leads, do the work — a numbered "tick" written to etcd under the
 * leadership's fence — until leading ends; then campaign again. SIGTERM stops
 * it: the work ends first, then it resigns. Reports each step as a JSON line.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, Op } from '@etcdkit/client';
import { Election } from '@etcdkit/election';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const name = process.env.REPLICA_NAME ?? `replica-${process.pid}`;
const prefix = process.env.EXAMPLE_PREFIX ?? 'examples/election/';
const ttl = Number(process.env.SESSION_TTL ?? 2);

const report = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ replica: name, ...event })}\n`);

// The client's shared session (TTL `ttl`) holds the replica's key; after a loss, run() takes a new one.
const etcd = createClient({ endpoints, keyPrefix: prefix, sessionTtl: ttl });
const shutdown = new AbortController();
process.once('SIGTERM', () => shutdown.abort(new Error('shutting down on SIGTERM')));

await new Election(etcd, 'leader').run(
  name,
  async (leadership) => {
    // The work only the leader does: each tick is written only while this replica still leads.
    while (!leadership.signal.aborted) {
      const last = (await etcd.get('ticks'))?.value;
      const tick = (typeof last === 'number' ? last : 0) + 1;
      const write = await etcd.txn().if(leadership.guard()).success(Op.put('ticks', tick)).commit();
      if (!write.succeeded) return; // fenced: another replica leads now
      report({ event: 'tick', tick, token: String(leadership.token) });
      await sleep(200, undefined, { signal: leadership.signal }).catch(() => undefined);
    }
  },
  {
    signal: shutdown.signal,
    onStartedLeading: (leadership) => {
      report({ event: 'elected', token: String(leadership.token) });
    },
    onStoppedLeading: (leadership) => {
      const reason = (leadership.signal.reason as Error).message;
      report({ event: 'stepped-down', token: String(leadership.token), reason });
    },
    onError: (err) => {
      report({ event: 'retrying', error: (err as Error).message });
    },
  },
);
await etcd.close();
