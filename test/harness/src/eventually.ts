import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  /** Give up after this many ms. Default 10 s. */
  timeout?: number;
  /** Pause between attempts in ms. Default 25. */
  interval?: number;
}

/**
 * Retries `check` until it returns without throwing, then returns its value.
 * After the timeout the last error is rethrown, so the failure says what was wrong.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeout ?? 10_000);
  const interval = options.interval ?? 25;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await sleep(interval);
  }
}
