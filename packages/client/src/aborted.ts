/**
 * The marker of a wait that ended because the call's signal aborted, not
 * because what it waited for failed: the call then rejects with the caller's
 * reason or a TimeoutError instead.
 */
import { untilAborted as waitUntilAborted } from './abort.js';
import { EtcdError } from './errors.js';

export class Aborted extends EtcdError {}

/** Waits for `promise` until `signal` aborts, then rejects with the `Aborted` marker. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return waitUntilAborted(promise, signal, () => new Aborted('aborted'));
}
