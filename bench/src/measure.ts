/**
 * Runs an operation with a fixed number in flight until a count or a time
 * budget is used up, timing every operation. Both bounds hold, so a slow
 * implementation takes no longer, it just completes fewer operations.
 */
import { performance } from 'node:perf_hooks';
import type { Operation } from './workloads.js';

export interface Drive {
  /** Operations completed. */
  ops: number;
  /** Wall time from the first start to the last completion, ms. */
  elapsedMs: number;
  /** Latency of each completed operation, ms, in completion order. */
  latencies: Float64Array;
}

export async function drive(
  op: Operation,
  options: { concurrency: number; maxOps: number; budgetMs: number; firstIndex: number },
): Promise<Drive> {
  const { concurrency, maxOps, budgetMs, firstIndex } = options;
  const latencies = new Float64Array(maxOps);
  const start = performance.now();
  const deadline = start + budgetMs;
  let started = 0;
  let completed = 0;
  const worker = async () => {
    while (started < maxOps && performance.now() < deadline) {
      const i = started++;
      const t = performance.now();
      await op(firstIndex + i);
      latencies[completed++] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - start;
  return { ops: completed, elapsedMs, latencies: latencies.subarray(0, completed) };
}
