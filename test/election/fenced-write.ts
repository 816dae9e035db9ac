/**
 * What a replica process does as leader, once: write the shared resource
 * through its leadership's guard, and report to the test over IPC whether the
 * write passed, was fenced, or failed.
 */
import { type Etcd, Op } from '@etcdkit/client';
import type { Leadership } from '@etcdkit/election';
import type { ReplicaConfig, ReplicaMessage } from './helpers.js';

/** Pause between two writes of a leader. */
export const WRITE_EVERY_MS = 25;

export async function writeResource(
  client: Etcd,
  config: ReplicaConfig,
  leadership: Leadership,
  seq: number,
  send: (message: ReplicaMessage) => void,
): Promise<void> {
  const token = leadership.token.toString();
  try {
    const r = await client
      .txn()
      .if(leadership.guard())
      .success(Op.put(config.resource, { token, id: config.id, seq }))
      .commit({ timeout: 1_000 });
    send(r.succeeded ? { type: 'wrote', token, seq } : { type: 'fenced', token });
  } catch (err) {
    send({ type: 'error', message: `write: ${(err as Error).message}` });
  }
}
