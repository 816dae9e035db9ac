/**
 * A replica for the safety tests, run as a child process: it campaigns, and
 * while it believes it leads it writes the shared resource through its
 * leadership's guard, reporting each step to the test over IPC. When its
 * session is lost it starts a new one and campaigns again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd, type Session } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { WRITE_EVERY_MS, writeResource } from './fenced-write.js';
import type { ReplicaConfig, ReplicaMessage } from './helpers.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ReplicaConfig;
const send = (message: ReplicaMessage) => process.send?.(message);
const client = new Etcd({ endpoints: config.endpoints, timeout: 2_000 });

async function newSession(): Promise<Session> {
  for (;;) {
    try {
      return await client.session({ ttl: config.ttl });
    } catch (err) {
      send({ type: 'error', message: `session: ${(err as Error).message}` });
      await sleep(100);
    }
  }
}

async function lead(election: Election, session: Session): Promise<void> {
  const leadership = await election.campaign(config.id);
  const token = leadership.token.toString();
  send({ type: 'elected', token });
  for (let seq = 0; leadership.leading; seq++) {
    await writeResource(client, config, leadership, seq, send);
    await sleep(WRITE_EVERY_MS);
  }
  const reason = leadership.signal.reason as Error;
  send({ type: 'lost', token, reason: `${reason.name}: ${reason.message}` });
  if (session.alive) await leadership.resign().catch(() => undefined);
}

for (;;) {
  const session = await newSession();
  send({ type: 'ready', lease: session.lease.toString(16) });
  const election = new Election(client, config.name, { session });
  while (session.alive) {
    try {
      await lead(election, session);
    } catch (err) {
      send({ type: 'error', message: `campaign: ${(err as Error).message}` });
      await sleep(100);
    }
  }
}
