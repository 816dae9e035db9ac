/**
 * Software transactional memory on etcd, with the semantics of etcd's Go
 * `concurrency.STM`: a function reads and writes keys through a
 * `Transaction`, and its writes commit together only if what it read still
 * holds at the chosen isolation.
 *
 * How it works: each run gets a fresh `Transaction`. When the function
 * returns, one txn commits its writes under compares on its reads. If a
 * compare fails another writer got there first: the function runs again,
 * starting from the values that txn read back. A commit whose outcome is
 * unknown (the answer was lost, the deadline passed) is never run again: the
 * first one may have been applied, and a second would apply the writes twice.
 */
import {
  type Etcd,
  EtcdError,
  InvalidArgumentError,
  isClient,
  type TxnResult,
  untilAborted,
} from '@etcdkit/client';
import { StmConflictError, StmIndeterminateError } from './errors.js';
import { checkOptions, type StmOptions } from './options.js';
import { type CommitPlan, type Snapshot, snapshotOf, Transaction } from './transaction.js';

/**
 * Runs `fn` as one transaction and resolves to what it returned, once its
 * writes have committed. Rejects with what `fn` threw (nothing is written),
 * with StmConflictError after `maxAttempts` conflicting runs, with
 * StmIndeterminateError when the commit's outcome is unknown, and with
 * `signal.reason` on an abort before the commit was sent.
 */
export async function stm<V, T>(
  etcd: Etcd<V>,
  fn: (tx: Transaction<V>) => T | Promise<T>,
  options: StmOptions = {},
): Promise<T> {
  if (!isClient(etcd)) throw new InvalidArgumentError('stm(etcd, fn): etcd must be an Etcd client');
  if (typeof fn !== 'function')
    throw new InvalidArgumentError('stm(etcd, fn): fn must be a function');
  const { isolation, signal, maxAttempts, prefetch } = checkOptions(options);
  let prefetched: Snapshot<V> | undefined;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    const tx = new Transaction(etcd, isolation, signal, prefetched);
    let result: T;
    try {
      const run = async () => {
        if (prefetch.length > 0) await tx.read(prefetch);
        return fn(tx);
      };
      result = await (signal ? untilAborted(run(), signal) : run());
    } finally {
      tx.end();
    }
    // An abort during the run rejects with its reason even if fn caught it.
    signal?.throwIfAborted();
    const plan = tx.plan();
    if (plan.compare.length === 0 && plan.success.length === 0) return result;
    const committed = await commit(etcd, plan, signal);
    if (committed.succeeded) return result;
    if (attempt >= maxAttempts) {
      throw new StmConflictError(
        `every one of ${attempt} runs conflicted with another writer (maxAttempts ${maxAttempts})`,
        attempt,
      );
    }
    prefetched = snapshotOf(plan, committed);
  }
}

/** Sends the commit; a write whose outcome is unknown becomes StmIndeterminateError. */
async function commit<V>(
  etcd: Etcd<V>,
  plan: CommitPlan,
  signal: AbortSignal | undefined,
): Promise<TxnResult<V>> {
  const writes = plan.success.length > 0;
  try {
    return await etcd
      .txn()
      .if(...plan.compare)
      .success(...plan.success)
      .failure(...plan.failure)
      .commit({ signal });
  } catch (err) {
    if (writes && err instanceof EtcdError && err.indeterminate) {
      throw new StmIndeterminateError(
        `the commit's outcome is unknown and the function was not run again: ${err.message}`,
        err,
      );
    }
    // The client rejects an aborted call with the reason, sent or not: assume it was sent.
    if (writes && signal?.aborted && err === signal.reason) {
      throw new StmIndeterminateError(
        'aborted while the commit was on its way: it may or may not have been applied',
        err,
      );
    }
    throw err;
  }
}
