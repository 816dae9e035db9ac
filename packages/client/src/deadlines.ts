/**
 * One timer for the deadlines of every call in flight.
 *
 * How it works: a call registers an entry with the monotonic time its
 * deadline passes and removes it when it ends. The timer is armed for the
 * earliest registered deadline; when it fires, the entries past their
 * deadline expire and it is armed again for the earliest of the rest. Calls
 * mostly share one timeout, so a new entry's deadline is rarely the earliest,
 * and registering or removing one links or unlinks it in a list: no timer,
 * no allocation. When the entry the timer was armed for ended early, the
 * timer fires to find nothing due and is armed for the next.
 * The timer does not keep the process alive: a call in flight does, through
 * its connection or its own pause between retries.
 */
import { performance } from 'node:perf_hooks';

export interface Expiring {
  /** Monotonic time (`performance.now()`) at which the deadline passes. */
  readonly expiresAt: number;
  /** Called once, when the deadline has passed. */
  expire(): void;
  /** The neighbours in the list of registered entries; kept by `Deadlines` only. */
  previousDeadline: Expiring | undefined;
  nextDeadline: Expiring | undefined;
}

export class Deadlines {
  /** The registered entries, in the order they came: mostly their deadlines' order. */
  #first: Expiring | undefined;
  #last: Expiring | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (Infinity: not armed). */
  #armedFor = Number.POSITIVE_INFINITY;

  add(entry: Expiring): void {
    entry.previousDeadline = this.#last;
    entry.nextDeadline = undefined;
    if (this.#last) this.#last.nextDeadline = entry;
    else this.#first = entry;
    this.#last = entry;
    if (entry.expiresAt < this.#armedFor) this.#arm(entry.expiresAt);
  }

  /** Removes `entry`, which must have been added and not removed or expired since. */
  delete(entry: Expiring): void {
    const { previousDeadline: previous, nextDeadline: next } = entry;
    if (previous) previous.nextDeadline = next;
    else if (this.#first === entry) this.#first = next;
    else return;
    if (next) next.previousDeadline = previous;
    else this.#last = previous;
    entry.previousDeadline = undefined;
    entry.nextDeadline = undefined;
  }

  /** Stops the timer; entries still registered never expire. */
  clear(): void {
    this.#first = undefined;
    this.#last = undefined;
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
    for (let entry = this.#first; entry; entry = entry.nextDeadline) {
      if (entry.expiresAt <= now) expired.push(entry);
      else if (entry.expiresAt < next) next = entry.expiresAt;
    }
    for (const entry of expired) this.delete(entry);
    if (next < Number.POSITIVE_INFINITY) this.#arm(next);
    for (const entry of expired) entry.expire();
  };
}
