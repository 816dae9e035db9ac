/**
 * What one call to etcd knows about its own end: whether its deadline passed
 * or its caller aborted it, and what to stop when that happens.
 *
 * How it works: the call's request in flight registers how to abort it; the
 * deadline (through the transport's shared `Deadlines`) or the caller's
 * signal aborts the scope, which aborts that request at once. Steps that wait
 * on an AbortSignal (API prefix detection, a token, a pause between retries)
 * ask for `signal`, which is made on first use only: a call that needs none
 * of them makes no AbortController and adds no listener but the caller's.
 */
import type { Expiring } from './deadlines.js';

/** The abort reason of a call whose deadline passed. */
export const DEADLINE = Symbol('deadline');

/** What a scope aborts: the request it has in flight. */
export interface Abortable {
  abort(reason: unknown): void;
}

export class CallScope implements Expiring {
  /** Monotonic time at which the deadline passes (Infinity: none). */
  expiresAt = Number.POSITIVE_INFINITY;
  /** Set once the call was aborted, by its deadline or its caller. */
  aborted = false;
  /** Why: `DEADLINE`, or the caller's signal's reason. */
  reason: unknown;
  /** The deadline passed (even if the caller aborted first). */
  timedOut = false;
  /** A write of the call has been handed to a connection: it may be applied even if no answer comes. */
  inDoubt = false;
  /** The request in flight, aborted with the scope. */
  inFlight: Abortable | undefined;
  /** Links in the list of registered deadlines, kept by `Deadlines`. */
  previousDeadline: Expiring | undefined = undefined;
  nextDeadline: Expiring | undefined = undefined;
  #controller: AbortController | undefined;

  constructor(
    /** The caller's signal, if any. */
    readonly callerSignal: AbortSignal | undefined,
    /** The deadline in ms (0: none), for messages. */
    readonly timeout: number,
  ) {}

  /** A signal that aborts with the scope, for steps that take one. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    const request = this.inFlight;
    this.inFlight = undefined;
    request?.abort(reason);
  }

  expire(): void {
    this.timedOut = true;
    this.abort(DEADLINE);
  }

  /** Listens for the caller's signal; `handleEvent` makes the scope its own listener. */
  handleEvent(): void {
    this.abort(this.callerSignal?.reason);
  }
}
