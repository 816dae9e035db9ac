/**
 * `settle`: runs a write to etcd whose repetition does no harm until it
 * has an answer. A write that failed with its outcome unknown (etcd timed
 * out during a leader election, the connection broke after it was sent) or
 * that may be retried is sent again, with pauses of 100 ms doubling to 2 s,
 * until `signal` aborts. Any other error rejects at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdError } from '@etcdkit/client';

const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 2_000;

export async function settle<T>(attempt: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    try {
      return await attempt();
    } catch (err) {
      if (signal.aborted || !(err instanceof EtcdError && (err.indeterminate || err.retryable))) {
        throw err;
      }
    }
    await sleep(pause, undefined, { signal });
  }
}
