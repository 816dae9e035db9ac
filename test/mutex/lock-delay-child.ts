/**
 * A lock holder run as a child process by the lock-delay tests: it takes the
 * mutex, with a lock-delay, on a session of its own, reports the lock to the
 * parent, then releases it when told to, or waits to be killed.
 *
 * Argument: the JSON of a HolderConfig.
 */
import { Etcd } from '@etcdkit/client';
import { Mutex } from '@etcdkit/mutex';

export interface HolderConfig {
  endpoints: string[];
  name: string;
  /** The session's TTL in seconds. */
  ttl: number;
  lockDelay: number;
}

export type HolderMessage =
  | { type: 'held'; key: string; token: string; lease: string }
  | { type: 'released' };

const config = JSON.parse(process.argv[2] ?? '{}') as HolderConfig;
const client = new Etcd({ endpoints: config.endpoints });
const session = await client.session({ ttl: config.ttl });
const lock = await new Mutex(session, config.name, { lockDelay: config.lockDelay }).lock();

function send(message: HolderMessage): void {
  process.send?.(message);
}

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'release') return;
  void lock.release().then(() => send({ type: 'released' }));
});
send({ type: 'held', key: lock.key, token: String(lock.token), lease: String(session.lease) });
