/**
 * Writers and readers that run through a fault and record the outcome of
 * every call, and the checks on what they wrote.
 *
 * Each write creates a key of its own, once: even writers use a txn guarded
 * by `version == 0`, odd writers a plain put. A write applied twice therefore
 * shows either as a guarded txn that found its key already there or as a key
 * whose version is above 1.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Compare, type Etcd, EtcdError, type KeyValue, Op } from '@etcdkit/client';

/** A duration for diagnostics: "812 ms", or what happened instead. */
export function ms(value: number | undefined, otherwise = 'never'): string {
  return value === undefined ? otherwise : `${Math.round(value)} ms`;
}

/** An error as one line: class, whether a write is in doubt, message. */
export function describeError(err: unknown): string {
  if (err instanceof EtcdError) {
    return `${err.name}${err.indeterminate ? ' (indeterminate)' : ''}: ${err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export type Outcome = 'acked' | 'indeterminate' | 'failed' | 'existed';

export interface WriteRecord {
  key: string;
  value: string;
  kind: 'txn' | 'put';
  startedAt: number;
  endedAt: number;
  outcome: Outcome;
  error?: string;
}

export interface ReadRecord {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  error?: string;
}

export interface WorkloadOptions {
  /** Writers, each creating its own keys one after the other. Default 2 (one txn, one put). */
  writers?: number;
  /** Readers, each reading one key in a loop. Default 1. */
  readers?: number;
  /** Pause between two calls of one worker, in ms. Default 10. */
  pause?: number;
  /** Pause after a failed call, in ms. Default 50. */
  backoff?: number;
}

export class Workload {
  readonly writes: WriteRecord[] = [];
  readonly reads: ReadRecord[] = [];
  readonly #client: Etcd<string>;
  readonly #options: Required<WorkloadOptions>;
  #running = false;
  #workers: Promise<void>[] = [];

  /** Writes keys under `dir` (relative to the client's keyPrefix). */
  constructor(
    client: Etcd<string>,
    readonly dir: string,
    options: WorkloadOptions = {},
  ) {
    this.#client = client;
    this.#options = { writers: 2, readers: 1, pause: 10, backoff: 50, ...options };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (let w = 0; w < this.#options.writers; w++) this.#workers.push(this.#writer(w));
    for (let r = 0; r < this.#options.readers; r++) this.#workers.push(this.#reader());
  }

  /** Stops every worker once its current call has settled. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
    this.#workers = [];
  }

  async #writer(w: number): Promise<void> {
    const kind = w % 2 === 0 ? 'txn' : 'put';
    for (let seq = 0; this.#running; seq++) {
      const key = `${this.dir}${kind}${w}/${String(seq).padStart(6, '0')}`;
      const value = `${kind}${w}:${seq}`;
      const startedAt = performance.now();
      let outcome: Outcome;
      let error: string | undefined;
      try {
        if (kind === 'txn') {
          const r = await this.#client
            .txn()
            .if(Compare.version(key, '=', 0))
            .success(Op.put(key, value))
            .commit();
          outcome = r.succeeded ? 'acked' : 'existed';
        } else {
          await this.#client.set(key, value);
          outcome = 'acked';
        }
      } catch (err) {
        outcome = err instanceof EtcdError && err.indeterminate ? 'indeterminate' : 'failed';
        error = describeError(err);
      }
      const record: WriteRecord = {
        key,
        value,
        kind,
        startedAt,
        endedAt: performance.now(),
        outcome,
      };
      if (error !== undefined) record.error = error;
      this.writes.push(record);
      await sleep(outcome === 'acked' ? this.#options.pause : this.#options.backoff);
    }
  }

  async #reader(): Promise<void> {
    while (this.#running) {
      const startedAt = performance.now();
      try {
        await this.#client.get(`${this.dir}txn0/000000`);
        this.reads.push({ startedAt, endedAt: performance.now(), ok: true });
        await sleep(this.#options.pause);
      } catch (err) {
        this.reads.push({
          startedAt,
          endedAt: performance.now(),
          ok: false,
          error: describeError(err),
        });
        await sleep(this.#options.backoff);
      }
    }
  }

  /** Writes acknowledged that were started at or after `t`. */
  ackedSince(t: number): number {
    return this.writes.filter((w) => w.outcome === 'acked' && w.startedAt >= t).length;
  }

  /** ms from `t` until the first write started at or after `t` was acknowledged. */
  writesResumed(t: number): number | undefined {
    const first = this.writes.find((w) => w.outcome === 'acked' && w.startedAt >= t);
    return first && first.endedAt - t;
  }

  /** ms from `t` until the first read started at or after `t` succeeded. */
  readsResumed(t: number): number | undefined {
    const first = this.reads.find((r) => r.ok && r.startedAt >= t);
    return first && first.endedAt - t;
  }

  /** Failed calls (started at or after `t`) by error, e.g. "TimeoutError (indeterminate): ... x3". */
  errorsSince(t = 0): string[] {
    const counts = new Map<string, number>();
    for (const r of [...this.writes, ...this.reads]) {
      if (r.error === undefined || r.startedAt < t) continue;
      const text = `${'kind' in r ? 'write' : 'read'} ${r.error.slice(0, 160)}`;
      counts.set(text, (counts.get(text) ?? 0) + 1);
    }
    return [...counts].map(([text, n]) => `${text} x${n}`);
  }

  summary(): string {
    const count = (o: Outcome) => this.writes.filter((w) => w.outcome === o).length;
    const failedReads = this.reads.filter((r) => !r.ok).length;
    return (
      `${this.writes.length} writes: ${count('acked')} acked, ${count('indeterminate')} indeterminate, ` +
      `${count('failed')} failed, ${count('existed')} found already applied; ` +
      `${this.reads.length} reads, ${failedReads} failed`
    );
  }
}

/** Every pair under `dir`, read by `checker` (a client that talks to the members directly). */
export async function readAll(checker: Etcd<string>, dir: string): Promise<KeyValue<string>[]> {
  const kvs: KeyValue<string>[] = [];
  for await (const kv of checker.range(dir, { pageSize: 500 })) kvs.push(kv);
  return kvs;
}

/**
 * The checks on writes: every acknowledged write is present with its value;
 * none is applied twice (version 1, and no guarded write found its key
 * already there); a write that failed definitely is absent; nothing is
 * present that was never written. Returns the problems found.
 */
export function checkWrites(workload: Workload, kvs: KeyValue<string>[]): string[] {
  const problems: string[] = [];
  const stored = new Map(kvs.map((kv) => [kv.key, kv]));
  const attempted = new Set(workload.writes.map((w) => w.key));
  for (const w of workload.writes) {
    const kv = stored.get(w.key);
    if (w.outcome === 'acked' && !kv) problems.push(`acknowledged write ${w.key} is missing`);
    if (w.outcome === 'failed' && kv) {
      problems.push(`write ${w.key} failed definitely (${w.error}) but is present`);
    }
    if (w.outcome === 'existed') {
      problems.push(`guarded write ${w.key} found its key already there: it was sent twice`);
    }
    if (kv && kv.value !== w.value) problems.push(`${w.key} holds ${kv.value}, not ${w.value}`);
  }
  for (const kv of kvs) {
    if (kv.version !== 1) problems.push(`${kv.key} was written ${kv.version} times`);
    if (!attempted.has(kv.key)) problems.push(`${kv.key} is present but was never written`);
  }
  return problems;
}
