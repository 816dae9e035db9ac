/**
 * Clean-up that must happen eventually: a queue key given up, a candidate
 * withdrawn, a release whose answer was lost. Left undone on a live lease it
 * would block others for good; so it is tried, with growing pauses, until it
 * is done or `signal` (the session's, say) ends the need for it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const FIRST_PAUSE_MS = 100;
const MAX_PAUSE_MS = 2_000;

/**
 * Calls `attempt` until it resolves true, or until `signal` aborts; a rejection
 * counts as "not yet". Pauses 100 ms, doubling up to 2 s, between tries (and
 * before the first with `pauseFirst`). The pauses are not ref'd: a process on
 * its way out need not wait for them. Never rejects.
 */
export async function keepTrying(
  attempt: () => Promise<boolean>,
  signal: AbortSignal,
  options: { pauseFirst?: boolean } = {},
): Promise<void> {
  let pause = FIRST_PAUSE_MS;
  for (let first = true; !signal.aborted; first = false) {
    if (!first || options.pauseFirst) {
      await sleep(pause, undefined, { signal, ref: false }).catch(() => undefined);
      if (signal.aborted) return;
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
    }
    if (await attempt().catch(() => false)) return;
  }
}
