/**
 * Helpers for waits that must end on the caller's terms: a caller's signal and
 * timeout joined into one signal, and a wait on a shared promise that one
 * caller may stop without cancelling it for the others.
 */

export interface GiveUp {
  /** Aborts at the caller's signal or when the timeout passes. */
  readonly signal: AbortSignal;
  /** Stops the timer; call once the wait is over. */
  dispose(): void;
}

/**
 * One signal for `signal` and `timeout` (ms): it aborts with `signal.reason`,
 * or with `onTimeout()` when the timeout passes first.
 */
export function giveUpSignal(
  options: { signal?: AbortSignal | undefined; timeout?: number | undefined },
  onTimeout: (ms: number) => Error,
): GiveUp {
  const signals: AbortSignal[] = [];
  if (options.signal) signals.push(options.signal);
  let timer: NodeJS.Timeout | undefined;
  const { timeout } = options;
  if (timeout !== undefined) {
    const controller = new AbortController();
    timer = setTimeout(() => controller.abort(onTimeout(timeout)), timeout);
    signals.push(controller.signal);
  }
  return { signal: AbortSignal.any(signals), dispose: () => clearTimeout(timer) };
}

/**
 * Waits for `promise`, but stops waiting (without cancelling it) when `signal`
 * aborts, rejecting with `reason()`: the signal's reason unless told otherwise.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  reason: () => unknown = () => signal.reason,
): Promise<T> {
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
