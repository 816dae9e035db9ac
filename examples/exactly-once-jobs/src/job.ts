/**
 * One job, applied to the ledger exactly once, by whichever worker gets it.
 *
 * How it works: the worker takes the job's lock, then looks again whether the
 * job is done (another worker may have finished it while this one waited). It
 * does the work and applies it at the ledger with the job ID and its fencing
 * token; the ledger refuses a second apply of the job and a stale token. Then
 * it marks the job done in etcd with a txn guarded by the lock and by "not
 * done yet". If that txn's outcome is unknown (indeterminate: a member died
 * with it in flight), the worker keeps the lock and sends the same txn again:
 * while the lock is held nobody else can mark the job, so a failed compare
 * with a done mark carrying its own token means an earlier attempt landed.
 * Releasing instead would let another worker find the job pending and redo it.
 * If the lock is lost, the worker stops: the next holder reads the job's
 * state, and the ledger's idempotency key stops a second apply.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Compare, type Etcd, EtcdError, Op } from '@etcdkit/client';
import { type Lock, Mutex } from '@etcdkit/mutex';
import type { ApplyResult } from './ledger.js';

/** Where a job lives: `jobs/<id>` holds it, `done/<id>` marks it done, `locks/<id>` is its lock. */
export const JOBS = 'jobs/';
export const DONE = 'done/';
export const jobKey = (id: string) => `${JOBS}${id}`;
export const doneKey = (id: string) => `${DONE}${id}`;
export const lockName = (id: string) => `locks/${id}`;

/** The done mark: who marked the job, under which token, and the token the ledger applied it with. */
export type DoneMark = {
  by: string;
  token: string;
  applied: string;
};

export type JobEvent =
  | { event: 'skipped'; job: string }
  | { event: 'duplicate'; job: string; applied: string }
  | { event: 'retrying'; job: string; attempt: number; indeterminate: boolean; error: string }
  | { event: 'done'; job: string; token: string; attempts: number; byEarlierAttempt: boolean }
  | { event: 'left'; job: string; reason: string };

export interface JobContext {
  etcd: Etcd;
  /** This worker's name, recorded in the done mark. */
  worker: string;
  /** Applies a job at the ledger with the holder's fencing token (see `applyAt`). */
  apply(job: string, token: bigint): Promise<ApplyResult>;
  /** How long the work itself takes, in ms. */
  workMs: number;
  report(event: JobEvent): void;
}

/** Does job `id` unless it is done already; settles once the job is done or left to the next holder. */
export async function doJob(ctx: JobContext, id: string): Promise<void> {
  const lock = await new Mutex(ctx.etcd, lockName(id)).lock();
  try {
    await underLock(ctx, lock, id);
  } finally {
    // A release whose answer is lost is finished by the lock in the background;
    // the job's state is settled either way.
    await lock.release().catch(() => undefined);
  }
}

async function underLock(ctx: JobContext, lock: Lock, id: string): Promise<void> {
  if (await ctx.etcd.get(doneKey(id))) {
    ctx.report({ event: 'skipped', job: id });
    return;
  }
  try {
    // The work itself; the lock's signal stops it if the lock is lost meanwhile.
    await sleep(ctx.workMs, undefined, { signal: lock.signal });
  } catch {
    ctx.report({ event: 'left', job: id, reason: 'the lock was lost during the work' });
    return;
  }
  const applied = await applyOnce(ctx, lock, id);
  if (applied === undefined) return;
  const mark: DoneMark = { by: ctx.worker, token: String(lock.token), applied };
  await markDone(ctx, lock, id, mark);
}

/** Applies at the ledger, again if the answer is lost (the job ID makes that safe). Returns the applying token. */
async function applyOnce(ctx: JobContext, lock: Lock, id: string): Promise<string | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await ctx.apply(id, lock.token);
      if (r.result === 'stale') {
        ctx.report({
          event: 'left',
          job: id,
          reason: `a later holder (token ${r.highest}) took over`,
        });
        return undefined;
      }
      if (r.result === 'duplicate') ctx.report({ event: 'duplicate', job: id, applied: r.token });
      return r.token;
    } catch (err) {
      if (!(await pause(lock, attempt))) {
        ctx.report({ event: 'left', job: id, reason: `ledger unreachable: ${String(err)}` });
        return undefined;
      }
    }
  }
}

/**
 * Marks the job done under the lock. An answer that is lost or refused for a
 * passing reason never leads to a release: the same guarded txn is sent again
 * for as long as the lock is held.
 */
async function markDone(ctx: JobContext, lock: Lock, id: string, mark: DoneMark): Promise<void> {
  const key = doneKey(id);
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await ctx.etcd
        .txn()
        .if(lock.guard(), Compare.createRevision(key, '=', 0n))
        .success(Op.put(key, mark))
        .failure(Op.get(key))
        .commit();
      const found = r.results[0]?.type === 'range' ? r.results[0].kvs[0]?.value : undefined;
      // Under the lock only this holder marks the job: a mark with its token is its own earlier attempt.
      if (r.succeeded || (found as DoneMark | undefined)?.token === mark.token) {
        ctx.report({
          event: 'done',
          job: id,
          token: mark.token,
          attempts: attempt,
          byEarlierAttempt: !r.succeeded,
        });
      } else {
        ctx.report({
          event: 'left',
          job: id,
          reason: 'the lock was lost before the job was marked done',
        });
      }
      return;
    } catch (err) {
      if (!(err instanceof EtcdError && (err.indeterminate || err.retryable))) throw err;
      const error = `${err.name}: ${err.message}`;
      ctx.report({ event: 'retrying', job: id, attempt, indeterminate: err.indeterminate, error });
      if (!(await pause(lock, attempt))) {
        // Whether an earlier attempt landed is for the next holder to read.
        ctx.report({
          event: 'left',
          job: id,
          reason: 'the lock was lost while marking the job done',
        });
        return;
      }
    }
  }
}

/** Waits before attempt `attempt + 1`; false if the lock was lost meanwhile. */
async function pause(lock: Lock, attempt: number): Promise<boolean> {
  try {
    await sleep(Math.min(100 * attempt, 1_000), undefined, { signal: lock.signal });
    return true;
  } catch {
    return false;
  }
}
