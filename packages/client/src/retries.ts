/**
 * Which failed calls are tried again, how soon, and how many times.
 *
 * How it works: a failure etcd or the transport marks retryable (reads;
 * writes that provably never left) is tried again up to `MAX_RETRIES` times
 * with jittered backoff, within the call's deadline. Retries cost a token from
 * a budget the client's calls share; successful calls earn a tenth of one
 * back. A cluster that keeps failing drains the budget, and calls then fail at
 * once instead of multiplying the load on it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { EtcdError } from './errors.js';

/** Retries before a call gives up (each also bounded by the deadline). */
const MAX_RETRIES = 4;
const RETRY_MIN_MS = 25;
const BUDGET = 20;

export class Retries {
  #tokens = BUDGET;

  /** A call succeeded: it earns back part of a retry. */
  earn(): void {
    this.#tokens = Math.min(BUDGET, this.#tokens + 0.1);
  }

  /**
   * After `err`, runs `attempt` again while its failures may be retried and
   * the budget lasts, until `signal` aborts; rejects with `err` if it may not.
   */
  async retry<T>(err: unknown, attempt: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (!this.#retryable(err)) throw err;
    await sleep(RETRY_MIN_MS, undefined, { signal });
    return pRetry(attempt, {
      retries: MAX_RETRIES - 1,
      minTimeout: RETRY_MIN_MS,
      maxTimeout: 1_000,
      randomize: true,
      signal,
      shouldRetry: ({ error }) => this.#retryable(error),
    });
  }

  #retryable(error: unknown): boolean {
    if (!(error instanceof EtcdError && error.retryable) || this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
