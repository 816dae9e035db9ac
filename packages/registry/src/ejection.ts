/**
 * `Ejections` keeps a consumer away from instances that keep failing its
 * requests, for a while, in this process only (Curator's down-instance
 * policy; the instance's record in etcd is not touched).
 *
 * How it works: the consumer notes each failed request. The times of an
 * instance's failures within the last `window` ms are kept; once there are
 * `errors` of them the instance is ejected for `duration` ms and its count
 * starts again from zero. Expiry is checked when asked, so no timer runs: an
 * ejected instance is simply a candidate again once its time is up.
 */
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '@etcdkit/client';
import { checkOptions } from './validate.js';

/** Failed requests within the window that eject an instance (Curator's default threshold). */
export const DEFAULT_EJECTION_ERRORS = 2;
/** ms within which the failures must fall (Curator's default timeout). */
export const DEFAULT_EJECTION_WINDOW = 30_000;
/** ms an ejected instance is passed over before it is a candidate again. */
export const DEFAULT_EJECTION_DURATION = 30_000;

export interface EjectionOptions {
  /** Failed requests within `window` that eject an instance. Default 2. */
  errors?: number | undefined;
  /** ms within which those failures must fall. Default 30 000. */
  window?: number | undefined;
  /** ms the instance stays ejected. Default 30 000. */
  duration?: number | undefined;
}

const EJECTION_OPTIONS = ['errors', 'window', 'duration'];

export class Ejections {
  readonly #errors: number;
  readonly #window: number;
  readonly #duration: number;
  /** Times of recent failures, by instance ID. */
  readonly #failures = new Map<string, number[]>();
  /** When each ejection ends, by instance ID. */
  readonly #until = new Map<string, number>();

  constructor(options: EjectionOptions = {}) {
    checkOptions('discover: ejection', options, EJECTION_OPTIONS);
    this.#errors = whole(options.errors ?? DEFAULT_EJECTION_ERRORS, 'errors');
    this.#window = duration(options.window ?? DEFAULT_EJECTION_WINDOW, 'window');
    this.#duration = duration(options.duration ?? DEFAULT_EJECTION_DURATION, 'duration');
  }

  /** Notes one failed request to `id`; true when it ejected the instance. */
  note(id: string): boolean {
    const now = performance.now();
    if (this.has(id, now)) return false;
    const recent = (this.#failures.get(id) ?? []).filter((at) => now - at < this.#window);
    recent.push(now);
    if (recent.length < this.#errors) {
      this.#failures.set(id, recent);
      return false;
    }
    this.#failures.delete(id);
    this.#until.set(id, now + this.#duration);
    return true;
  }

  /** True while `id` is ejected. */
  has(id: string, now = performance.now()): boolean {
    const until = this.#until.get(id);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#until.delete(id);
    return false;
  }

  /** True when some instance may be ejected: the cheap test before filtering. */
  get any(): boolean {
    return this.#until.size > 0;
  }

  /** IDs ejected right now, sorted. */
  ids(): string[] {
    const now = performance.now();
    return [...this.#until.keys()].filter((id) => this.has(id, now)).sort();
  }

  /** Forgets an instance that left the set. */
  forget(id: string): void {
    this.#failures.delete(id);
    this.#until.delete(id);
  }
}

function whole(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      `discover: ejection.${what} must be a whole number >= 1, got ${String(value)}`,
    );
  }
  return value;
}

function duration(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(
      `discover: ejection.${what} must be a number of ms > 0, got ${String(value)}`,
    );
  }
  return value;
}
