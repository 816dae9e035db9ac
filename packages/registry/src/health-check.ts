/**
 * A `HealthCheck` runs an instance's own check of itself and decides when the
 * instance counts as healthy or unhealthy.
 *
 * How it works: the first check runs before the key is written and sets the
 * initial state directly. After that one check runs at a time, `interval` ms
 * after the previous one ended; each is given `timeout` ms and a signal that
 * aborts when they are up or the registration ends. A check that ignores its
 * signal is not started again while it still runs: every later round in which
 * it has not settled counts as one more failure. `failureThreshold` failures
 * in a row make a healthy instance unhealthy, `successThreshold` successes in
 * a row make an unhealthy one healthy; each change is handed to `onChange`,
 * which stores it in the instance's record on the registration's lease.
 */
import { InvalidArgumentError, TimeoutError } from '@etcdkit/client';
import { sleep } from './backoff.js';
import { checkOptions } from './validate.js';

/** Time between the end of one check and the start of the next, in ms (as Consul's default interval). */
export const DEFAULT_HEALTH_INTERVAL = 10_000;
/** How long a check may take before it counts as failed, in ms. */
export const DEFAULT_HEALTH_TIMEOUT = 5_000;
/** Failures in a row that make an instance unhealthy: one slow answer is not an outage. */
export const DEFAULT_FAILURE_THRESHOLD = 3;
/** Successes in a row that make an unhealthy instance healthy again. */
export const DEFAULT_SUCCESS_THRESHOLD = 1;

/**
 * Resolves (or returns) `false` when the instance is unhealthy; throwing or
 * rejecting counts as unhealthy too, with the error's message as the reason.
 * Anything else is healthy. `signal` aborts when the check's time is up or
 * the registration ends: pass it on to the requests the check makes.
 */
export type HealthCheckFunction = (signal: AbortSignal) => unknown;

export interface HealthCheckOptions {
  check: HealthCheckFunction;
  /** ms between the end of one check and the start of the next. Default 10 000. */
  interval?: number | undefined;
  /** ms a check may take before it counts as failed. Default 5 000. */
  timeout?: number | undefined;
  /** Failures in a row that make the instance unhealthy. Default 3. */
  failureThreshold?: number | undefined;
  /** Successes in a row that make it healthy again. Default 1. */
  successThreshold?: number | undefined;
}

/** The health an instance stores about itself. */
export interface HealthState {
  healthy: boolean;
  /** When the instance became healthy or unhealthy (ISO 8601). */
  since: string;
  /** Why the last check failed, while unhealthy. */
  reason: string | undefined;
}

const HEALTH_OPTIONS = ['check', 'interval', 'timeout', 'failureThreshold', 'successThreshold'];

/** Checked health options with every default filled in. */
export interface HealthConfig {
  check: HealthCheckFunction;
  interval: number;
  timeout: number;
  failureThreshold: number;
  successThreshold: number;
}

/** Checks `register()`'s `health` option. */
export function checkHealthOptions(options: unknown): HealthConfig {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('register: health must be an object with a check function');
  }
  checkOptions('register: health', options, HEALTH_OPTIONS);
  const o = options as HealthCheckOptions;
  if (typeof o.check !== 'function') {
    throw new InvalidArgumentError('register: health.check must be a function');
  }
  return {
    check: o.check,
    interval: positive(o.interval ?? DEFAULT_HEALTH_INTERVAL, 'interval'),
    timeout: positive(o.timeout ?? DEFAULT_HEALTH_TIMEOUT, 'timeout'),
    failureThreshold: count(o.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD, 'failureThreshold'),
    successThreshold: count(o.successThreshold ?? DEFAULT_SUCCESS_THRESHOLD, 'successThreshold'),
  };
}

function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 2 ** 31 - 1) {
    throw new InvalidArgumentError(
      `register: health.${what} must be a number of ms > 0 and < 2^31, got ${String(value)}`,
    );
  }
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      `register: health.${what} must be a whole number >= 1, got ${String(value)}`,
    );
  }
  return value;
}

/** The outcome of one round, with the reason of a failure. */
type Outcome = { failed: false } | { failed: true; reason: string };

export class HealthCheck {
  readonly #config: HealthConfig;
  readonly #stop: AbortSignal;
  readonly #onChange: (state: HealthState) => void;
  #state: HealthState | undefined;
  #streak = 0;
  /** True while a check that outlived its timeout has not settled. */
  #stuck = false;
  #loop: Promise<void> | undefined;

  /** `stop` ends the checks for good; `onChange` receives every change of state after the first. */
  constructor(config: HealthConfig, stop: AbortSignal, onChange: (state: HealthState) => void) {
    this.#config = config;
    this.#stop = stop;
    this.#onChange = onChange;
  }

  /** Runs the first check; its outcome is the initial state. Rejects only when `signal` or stop aborts. */
  async first(signal?: AbortSignal): Promise<HealthState> {
    const outcome = await this.#round(signal);
    this.#state = {
      healthy: !outcome.failed,
      since: new Date().toISOString(),
      reason: outcome.failed ? outcome.reason : undefined,
    };
    return this.#state;
  }

  /** Checks every interval until stopped. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves once the loop has ended (after stop aborted). */
  async stopped(): Promise<void> {
    await this.#loop;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        await sleep(this.#config.interval, this.#stop);
        this.#apply(await this.#round());
      }
    } catch {
      // Stopped: the only way out of the loop.
    }
  }

  #apply(outcome: Outcome): void {
    const state = this.#state;
    if (!state) return;
    if (outcome.failed === !state.healthy) {
      this.#streak = 0;
      return;
    }
    this.#streak++;
    const threshold = state.healthy ? this.#config.failureThreshold : this.#config.successThreshold;
    if (this.#streak < threshold) return;
    this.#streak = 0;
    this.#state = {
      healthy: !outcome.failed,
      since: new Date().toISOString(),
      reason: outcome.failed ? outcome.reason : undefined,
    };
    this.#onChange(this.#state);
  }

  /** One round: a new check within the timeout, or a failure while an old one still runs. */
  async #round(signal?: AbortSignal): Promise<Outcome> {
    const { timeout } = this.#config;
    const signals = signal ? [this.#stop, signal] : [this.#stop];
    if (this.#stuck) return { failed: true, reason: 'the previous check is still running' };
    const controller = new AbortController();
    const onAbort = () => controller.abort(signals.find((s) => s.aborted)?.reason);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    const call = (async () => this.#config.check(controller.signal))().then(
      (result): Outcome =>
        result === false
          ? { failed: true, reason: 'the check reported unhealthy' }
          : { failed: false },
      (err: unknown): Outcome => ({ failed: true, reason: describe(err) }),
    );
    try {
      const settled = await within(call, timeout, signals);
      if (settled) return settled.value;
      controller.abort(new TimeoutError(`the health check took over ${timeout} ms`));
      this.#stuck = true;
      void call.then(() => {
        this.#stuck = false;
      });
      return { failed: true, reason: `timed out after ${timeout} ms` };
    } finally {
      for (const s of signals) s.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * `{ value }` once `promise` settles within `ms`, undefined when it does not;
 * rejects with the reason of the first of `signals` to abort.
 */
function within<T>(
  promise: Promise<T>,
  ms: number,
  signals: AbortSignal[],
): Promise<{ value: T } | undefined> {
  return new Promise((resolve, reject) => {
    const aborted = signals.find((s) => s.aborted);
    if (aborted) {
      reject(aborted.reason);
      return;
    }
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(signals.find((s) => s.aborted)?.reason));
    const timer = setTimeout(() => finish(() => resolve(undefined)), ms);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    void promise.then((value) => finish(() => resolve({ value })));
  });
}

/** Longest reason stored: the record stays small whatever a check throws. */
const MAX_REASON = 500;

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
}
