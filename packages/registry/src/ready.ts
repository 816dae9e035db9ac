/**
 * Waiting until a service set holds an instance worth calling: one that is
 * `up`, or with `healthy: true` one that is also healthy. Settles once, on
 * the first of: such an instance, the timeout, the caller's abort, the set
 * closing; every listener and the timer are removed when it does.
 */
import { InvalidArgumentError } from '@etcdkit/client';
import { NoInstancesError, ServiceSetClosedError } from './errors.js';
import type { ServiceInstance } from './instance.js';
import type { ServiceSet } from './service-set.js';
import { checkDuration, checkOptions } from './validate.js';

export interface ReadyOptions {
  /** Give up after this many ms with `NoInstancesError`. Default: wait until aborted or closed. */
  timeout?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Wait for a healthy instance, not just one that is `up`. Default false. */
  healthy?: boolean | undefined;
}

const READY_OPTIONS = ['timeout', 'signal', 'healthy'];

/** @internal the body of `ServiceSet.ready()`. */
export function waitReady(
  set: ServiceSet,
  options: ReadyOptions,
): Promise<readonly ServiceInstance[]> {
  return new Promise((resolve, reject) => {
    checkOptions('ready', options, READY_OPTIONS);
    const timeout =
      options.timeout === undefined ? undefined : checkDuration(options.timeout, 'timeout');
    const { signal, healthy } = options;
    if (healthy !== undefined && typeof healthy !== 'boolean') {
      throw new InvalidArgumentError(
        `ready: healthy must be true or false, got ${String(healthy)}`,
      );
    }
    const wanted = healthy ? 'healthy' : 'up';
    const check = () => {
      if (set.instances().some((i) => i.status === 'up' && (!healthy || i.healthy)))
        finish(() => resolve(set.instances()));
    };
    const onAbort = () => finish(() => reject(signal?.reason));
    const onClosed = () =>
      finish(() => reject(new ServiceSetClosedError(`the set of ${set.service} was closed`)));
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(() => {
            const message = `no instance of ${set.service} was ${wanted} within ${timeout} ms`;
            finish(() => reject(new NoInstancesError(message)));
          }, timeout);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      set.off('added', check).off('updated', check).off('closed', onClosed);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    if (signal?.aborted) return onAbort();
    if (!set.open) return onClosed();
    set.on('added', check).on('updated', check).on('closed', onClosed);
    signal?.addEventListener('abort', onAbort, { once: true });
    check();
  });
}
