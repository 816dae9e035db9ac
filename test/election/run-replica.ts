/**
 * A replica for the run-loop fault tests, run as a child process: its whole
 * life is one `election.run()` on the client's shared session. Its work writes
 * the shared resource through the leadership's guard until the leadership's
 * signal aborts. It reports to the test over IPC: `elected` from
 * onStartedLeading, `wrote` or `fenced` for each write, `lost` as soon as the
 * signal aborts (it no longer believes it leads), `stopped` from
 * onStoppedLeading, and each error the loop recovers from.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { WRITE_EVERY_MS, writeResource } from './fenced-write.js';
import type { ReplicaConfig, ReplicaMessage } from './helpers.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ReplicaConfig;
const send = (message: ReplicaMessage) => process.send?.(message);
const client = new Etcd({ endpoints: config.endpoints, timeout: 2_000, sessionTtl: config.ttl });

await new Election(client, config.name).run(
  config.id,
  async (leadership) => {
    const token = leadership.token.toString();
    const { signal } = leadership;
    const lost = () => {
      const reason = signal.reason as Error;
      send({ type: 'lost', token, reason: `${reason.name}: ${reason.message}` });
    };
    if (signal.aborted) lost();
    else signal.addEventListener('abort', lost, { once: true });
    for (let seq = 0; !signal.aborted; seq++) {
      await writeResource(client, config, leadership, seq, send);
      await sleep(WRITE_EVERY_MS, undefined, { signal }).catch(() => undefined);
    }
  },
  {
    onStartedLeading: (leadership) => {
      send({ type: 'elected', token: String(leadership.token) });
    },
    onStoppedLeading: (leadership) => {
      send({ type: 'stopped', token: String(leadership.token) });
    },
    onError: (err) => {
      send({ type: 'error', message: `run: ${(err as Error).message}` });
    },
    retryDelay: 100,
    maxRetryDelay: 1_000,
  },
);
