/** Waiting between attempts: exponential backoff with jitter, and an abortable sleep. */
import { EtcdError } from '@etcdkit/client';

/** First retry delay: short, since most outages here are a leader election. */
export const BACKOFF_BASE_MS = 100;
/** Ceiling of the retry delay, so a long outage is still retried every few seconds. */
export const BACKOFF_MAX_MS = 5_000;

/** Delay before retry number `attempt` (0-based): doubling, capped, with 50% jitter. */
export function backoff(attempt: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return base / 2 + Math.random() * (base / 2);
}

/** An error after which the same idempotent write may succeed: etcd unreachable, leader lost, timeout. */
export function isTransient(err: unknown): boolean {
  return err instanceof EtcdError && (err.retryable || err.indeterminate);
}

/** Resolves after `ms`; rejects with `signal.reason` when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `fn`, retrying transient errors up to `attempts` times in all, with backoff. */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  attempts: number,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted || !isTransient(err) || attempt + 1 >= attempts) throw err;
      await sleep(backoff(attempt), signal);
    }
  }
}

/**
 * Runs `fn` until it resolves, with backoff between attempts, reporting each
 * failure; gives up quietly once `stop` aborts or `superseded()` says a newer
 * attempt has taken over. Never rejects.
 */
export async function retryUntil(
  fn: () => Promise<unknown>,
  options: {
    stop: AbortSignal;
    superseded: () => boolean;
    onError: (error: Error, attempt: number) => void;
  },
): Promise<void> {
  const { stop, superseded, onError } = options;
  for (let attempt = 0; !stop.aborted && !superseded(); attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (stop.aborted) return;
      onError(err as Error, attempt);
      await sleep(backoff(attempt), stop).catch(() => undefined);
    }
  }
}
