/**
 * `runElection`: the loop behind `Election.run()`, for a replica whose whole
 * job is "do this while I lead".
 *
 * How it works: campaign; once elected, call `onStartedLeading`, then the
 * work with the leadership. The work ends by returning, by throwing, or (as
 * it must) soon after `leadership.signal` aborts: on a lost lease or key, or
 * when the caller's signal aborts, which ends leading without deleting the
 * key. Only once the work has settled is the key deleted (tried again until
 * it is gone or its lease is), so a hand-over never lets the next leader
 * start while this one still works (after a loss, only the fence can keep
 * them apart); then `onStoppedLeading`, and the next campaign. A failed
 * campaign (etcd unreachable, session lost) or work is followed by a pause
 * that doubles with each failure in a row, up to a bound. Beside the loop, an
 * observer reports each new leader to `onNewLeader`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthenticationError,
  ClientClosedError,
  EtcdError,
  InvalidArgumentError,
  keepTrying,
  PermissionDeniedError,
  type Session,
} from '@etcdkit/client';
import { checkOptions } from './check-options.js';
import { AlreadyCampaigningError, NotLeaderError } from './errors.js';
import { type ElectionValue, type LeaderInfo, valueBytes } from './leader-info.js';
import type { Leadership } from './leadership.js';

/** What a leader does. It must end soon after `leadership.signal` aborts. */
export type LeaderWork = (leadership: Leadership) => Promise<void> | void;

export interface RunOptions {
  /**
   * Stops the loop: a campaign under way gives up (its key is deleted in the
   * background), a work under way sees `leadership.signal` abort with this
   * signal's reason, and once it has ended the key is deleted. `run()` then
   * resolves. Without it, `run()` goes on until it fails.
   */
  signal?: AbortSignal | undefined;
  /** Called when this replica leads, before the work starts. */
  onStartedLeading?: ((leadership: Leadership) => Promise<void> | void) | undefined;
  /**
   * Called when leading has ended and the work has settled, once the key is
   * deleted (or gone with its lease): `leadership.signal.reason` says why.
   */
  onStoppedLeading?: ((leadership: Leadership) => Promise<void> | void) | undefined;
  /**
   * Called with the leader each time another one leads (this replica
   * included), and with `undefined` when none does. Its first call tells the
   * leader when `run()` starts.
   */
  onNewLeader?: ((leader: LeaderInfo | undefined) => void) | undefined;
  /**
   * Called, before the hand-over, when the work throws while it still leads.
   * Without it, such an error stops the loop and `run()` rejects with it.
   * With it, the loop goes on (campaigning again after a pause, as after a
   * failed campaign); to stop it, throw from here. An error thrown after
   * `leadership.signal` aborted is the work stopping, not failing.
   */
  onWorkError?: ((error: unknown, leadership: Leadership) => Promise<void> | void) | undefined;
  /** Called with each error the loop recovers from by trying again (a campaign, or the observer of `onNewLeader`). */
  onError?: ((error: unknown) => void) | undefined;
  /** The first pause (ms) before trying again after a failure; it doubles each time. Default 250. */
  retryDelay?: number | undefined;
  /** The longest pause (ms) between tries. Default 10 000. */
  maxRetryDelay?: number | undefined;
}

/** A won campaign and the session whose lease holds its key. */
export interface Term {
  leadership: Leadership;
  session: Session;
}

/** @internal what `Election.run` hands to the loop. */
export interface RunTarget {
  /** The election's own session, if it has one: once lost, no campaign can succeed. */
  fixedSession: Session | undefined;
  /** Campaigns under `signal`; the leadership also ends (keeping its key) when `signal` aborts. */
  campaign(signal: AbortSignal): Promise<Term>;
  observe(signal: AbortSignal): AsyncIterable<LeaderInfo | undefined>;
}

export const DEFAULT_RETRY_DELAY_MS = 250;
export const DEFAULT_MAX_RETRY_DELAY_MS = 10_000;

const RUN_OPTIONS = new Set([
  'signal',
  'onStartedLeading',
  'onStoppedLeading',
  'onNewLeader',
  'onWorkError',
  'onError',
  'retryDelay',
  'maxRetryDelay',
]);
const CALLBACKS = [
  'onStartedLeading',
  'onStoppedLeading',
  'onNewLeader',
  'onWorkError',
  'onError',
] as const;

/** A failure that ends the loop: `run()` rejects with `error`. */
class Halt {
  constructor(readonly error: unknown) {}
}

export async function runElection(
  target: RunTarget,
  value: ElectionValue,
  work: LeaderWork,
  options: RunOptions,
): Promise<void> {
  checkRunOptions(options);
  valueBytes(value);
  if (typeof work !== 'function') throw new InvalidArgumentError('run: work must be a function');
  const halt = new AbortController();
  const stop = options.signal ? AbortSignal.any([options.signal, halt.signal]) : halt.signal;
  let failure: Halt | undefined;
  const fail = (error: unknown) => {
    failure ??= new Halt(error);
    halt.abort(error);
  };
  const backoff = new Backoff(options);
  const following = options.onNewLeader
    ? followLeaders(target, options.onNewLeader, stop, fail, options)
    : undefined;
  try {
    while (!stop.aborted) {
      let term: Term;
      try {
        term = await target.campaign(stop);
      } catch (err) {
        if (stop.aborted) break;
        // The client's shared session is replaced after a loss; the election's own is not.
        const own = target.fixedSession;
        if (own && !own.alive) {
          fail(own.signal.reason);
          break;
        }
        if (isFinal(err)) {
          fail(err);
          break;
        }
        await report(options.onError, err, fail);
        await backoff.pause(stop);
        continue;
      }
      // Failures in a row, of campaigns or of works, pause longer each time.
      if (await serve(term, work, options, stop, fail)) await backoff.pause(stop);
      else backoff.reset();
    }
  } finally {
    halt.abort();
    await following;
  }
  if (failure) throw failure.error;
}

/**
 * One term: the work, then the hand-over. Resolves true if the work failed
 * (and the loop goes on after a pause); a failure that stops the loop goes to `fail`.
 */
async function serve(
  { leadership, session }: Term,
  work: LeaderWork,
  options: RunOptions,
  stop: AbortSignal,
  fail: (error: unknown) => void,
): Promise<boolean> {
  let failed = false;
  // Stopped as the campaign was won: no work starts after the caller's abort.
  if (stop.aborted) {
    await handOver(leadership, session);
    return false;
  }
  try {
    await options.onStartedLeading?.(leadership);
    try {
      await work(leadership);
    } catch (err) {
      // Work that throws once told to stop has stopped; anything before that is a failure.
      if (leadership.leading) {
        failed = true;
        if (!options.onWorkError) throw err;
        await options.onWorkError(err, leadership);
      }
    }
  } catch (err) {
    fail(err);
  }
  await handOver(leadership, session);
  await report(options.onStoppedLeading, leadership, fail);
  return failed;
}

/**
 * Deletes the key, tried until it is gone: a key left on a live lease would
 * lead with nobody working. It goes with its lease otherwise, so the tries
 * end when the session does (at most a TTL when etcd cannot be reached).
 */
function handOver(leadership: Leadership, session: Session): Promise<void> {
  return keepTrying(
    () =>
      leadership.resign().then(
        () => true,
        // Gone already, or no longer ours to delete.
        (err: unknown) => err instanceof NotLeaderError || err instanceof ClientClosedError,
      ),
    session.signal,
  );
}

/** Calls `onNewLeader` with each new leader, observing again after a failure, until `stop`. */
async function followLeaders(
  target: RunTarget,
  onNewLeader: (leader: LeaderInfo | undefined) => void,
  stop: AbortSignal,
  fail: (error: unknown) => void,
  options: RunOptions,
): Promise<void> {
  const backoff = new Backoff(options);
  // The token of the leader last reported, null for none, undefined before the first report.
  let last: bigint | null | undefined;
  while (!stop.aborted) {
    try {
      for await (const leader of target.observe(stop)) {
        backoff.reset();
        if (stop.aborted) return; // nothing is reported once run() stops
        const now = leader?.token ?? null;
        if (now === last) continue; // a new value of the same leader, or the same leader re-read
        last = now;
        if (!(await report(onNewLeader, leader, fail))) return;
      }
      return; // the client was closed: the campaign tells the loop
    } catch (err) {
      if (stop.aborted) return;
      await report(options.onError, err, fail);
      await backoff.pause(stop);
    }
  }
}

/** Calls a callback; if it throws, the loop stops with its error. Resolves false then. */
async function report<A>(
  callback: ((arg: A) => Promise<void> | void) | undefined,
  arg: A,
  fail: (error: unknown) => void,
): Promise<boolean> {
  try {
    await callback?.(arg);
    return true;
  } catch (err) {
    fail(err);
    return false;
  }
}

/** Whether a failed campaign cannot succeed by trying again. */
function isFinal(err: unknown): boolean {
  // A bug, not an outage.
  if (!(err instanceof EtcdError)) return true;
  return (
    err instanceof InvalidArgumentError ||
    err instanceof AlreadyCampaigningError ||
    err instanceof ClientClosedError ||
    err instanceof PermissionDeniedError ||
    err instanceof AuthenticationError
  );
}

/** Pauses that double from `retryDelay` up to `maxRetryDelay`, each drawn from its upper half. */
class Backoff {
  readonly #first: number;
  readonly #max: number;
  #next: number;

  constructor(options: RunOptions) {
    this.#first = options.retryDelay ?? DEFAULT_RETRY_DELAY_MS;
    this.#max = options.maxRetryDelay ?? DEFAULT_MAX_RETRY_DELAY_MS;
    this.#next = this.#first;
  }

  reset(): void {
    this.#next = this.#first;
  }

  /** Waits for the next pause, or until `signal` aborts; never rejects. */
  async pause(signal: AbortSignal): Promise<void> {
    // Jitter spreads replicas that all failed at once.
    const ms = this.#next * (0.5 + Math.random() / 2);
    this.#next = Math.min(this.#next * 2, this.#max);
    await sleep(ms, undefined, { signal }).catch(() => undefined);
  }
}

function checkRunOptions(options: RunOptions): void {
  checkOptions('run', options, RUN_OPTIONS);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
    throw new InvalidArgumentError('run: signal must be an AbortSignal');
  for (const name of CALLBACKS) {
    const callback = options[name];
    if (callback !== undefined && typeof callback !== 'function')
      throw new InvalidArgumentError(`run: ${name} must be a function`);
  }
  const first = options.retryDelay ?? DEFAULT_RETRY_DELAY_MS;
  const max = options.maxRetryDelay ?? DEFAULT_MAX_RETRY_DELAY_MS;
  if (!(Number.isFinite(first) && first >= 0))
    throw new InvalidArgumentError('run: retryDelay must be a number of ms >= 0');
  if (!(Number.isFinite(max) && max >= first))
    throw new InvalidArgumentError('run: maxRetryDelay must be a number of ms >= retryDelay');
}
