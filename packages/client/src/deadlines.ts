/**
 * One timer for the deadlines of every call in flight.
 *
 * How it works: a call registers an entry with the monotonic time its
 * deadline passes and removes it when it ends. The timer is armed for the
 * earliest registered deadline; when it fires, the entries past their
 * deadline expire and it is armed again for the earliest of the rest. Calls
 * mostly share one timeout, so a new entry's deadline is rarely the earliest,
 * and registering or removing one costs a set insertion or deletion, no timer.
 * An entry removed before its deadline is simply skipped when the timer fires.
 * The timer does not keep the process alive: a call in flight does, through
 * its connection or its own pause between retries.
 */
import { performance } from 'node:perf_hooks';

export interface Expiring {
  /** Monotonic time (`performance.now()`) at which the deadline passes. */
  readonly expiresAt: number;
  /** Called once, when the deadline has passed. */
  expire(): void;
}

export class Deadlines {
  readonly #entries = new Set<Expiring>();
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (Infinity: not armed). */
  #armedFor = Number.POSITIVE_INFINITY;

  add(entry: Expiring): void {
    this.#entries.add(entry);
    if (entry.expiresAt < this.#armedFor) this.#arm(entry.expiresAt);
  }

  delete(entry: Expiring): void {
    this.#entries.delete(entry);
  }

  /** Stops the timer; entries still registered never expire. */
  clear(): void {
    this.#entries.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = at;
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(at - performance.now())));
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const expired: Expiring[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.#entries) {
      if (entry.expiresAt <= now) expired.push(entry);
      else if (entry.expiresAt < next) next = entry.expiresAt;
    }
    for (const entry of expired) this.#entries.delete(entry);
    if (next < Number.POSITIVE_INFINITY) this.#arm(next);
    for (const entry of expired) entry.expire();
  };
}
