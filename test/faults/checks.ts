/**
 * Observers of a watcher and a session that keep what happened with
 * timestamps, and the checks that compare it with what etcd holds: the watch
 * delivered the stored history with no gap and no duplicate; the leases etcd
 * holds are exactly those the test still holds.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Etcd, KeyValue, Session, Watcher } from '@etcdkit/client';
import { eventually } from '@etcdkit/harness';
import { describeError } from './workload.js';

/** Drains a watcher in the background and keeps every event and state change. */
export class WatchLog {
  readonly events: string[] = [];
  readonly disconnects: number[] = [];
  readonly resumes: number[] = [];
  error: unknown;
  readonly ended: Promise<void>;

  constructor(watcher: Watcher<string>) {
    watcher.on('disconnected', () => this.disconnects.push(performance.now()));
    watcher.on('resumed', () => this.resumes.push(performance.now()));
    this.ended = (async () => {
      try {
        for await (const batch of watcher) {
          for (const e of batch.events) {
            this.events.push(`${e.kv.modRevision} ${e.type} ${e.kv.key} ${e.kv.value ?? ''}`);
          }
        }
      } catch (err) {
        this.error = err;
      }
    })();
  }

  /** ms from `t` until the watcher was resumed after a disconnect, if it was. */
  resumedAfter(t: number): number | undefined {
    const at = this.resumes.find((r) => r >= t);
    return at === undefined ? undefined : at - t;
  }
}

/**
 * Waits until the watcher has delivered the newest revision in `kvs`, then
 * compares what it delivered with the stored history: each key was put once,
 * so the history is the stored pairs in revision order. Returns the problems.
 */
export async function checkWatch(log: WatchLog, kvs: KeyValue<string>[]): Promise<string[]> {
  const expected = [...kvs]
    .sort((a, b) => (a.modRevision < b.modRevision ? -1 : 1))
    .map((kv) => `${kv.modRevision} put ${kv.key} ${kv.value}`);
  const last = expected.at(-1);
  try {
    await eventually(
      () => {
        if (log.error !== undefined) return;
        assert.ok(last === undefined || log.events.includes(last), 'the newest event arrived');
      },
      { timeout: 20_000, interval: 50 },
    );
  } catch {
    // Reported below as missing events.
  }
  const problems: string[] = [];
  if (log.error !== undefined) problems.push(`the watcher ended: ${describeError(log.error)}`);
  const seen = new Set<string>();
  for (const line of log.events) {
    if (seen.has(line)) problems.push(`watch delivered twice: ${line}`);
    seen.add(line);
  }
  const wanted = new Set(expected);
  const missing = expected.filter((line) => !seen.has(line));
  if (missing.length > 0) {
    problems.push(
      `watch missed ${missing.length} of ${expected.length} events, first: ${missing[0]}`,
    );
  }
  const extra = log.events.filter((line) => !wanted.has(line));
  if (extra.length > 0)
    problems.push(`watch delivered ${extra.length} unknown events: ${extra[0]}`);
  for (let i = 1; i < log.events.length; i++) {
    const rev = (line: string) => BigInt(line.slice(0, line.indexOf(' ')));
    if (rev(log.events[i]!) <= rev(log.events[i - 1]!)) {
      problems.push(`watch out of order at #${i}: ${log.events[i]} after ${log.events[i - 1]}`);
      break;
    }
  }
  return problems;
}

/** What a session went through. */
export class SessionLog {
  readonly renewals: number[] = [];
  lost: Error | undefined;
  lostAt: number | undefined;

  constructor(session: Session) {
    session.on('renewed', () => this.renewals.push(performance.now()));
    session.on('lost', (err) => {
      this.lost = err;
      this.lostAt = performance.now();
    });
  }

  /** ms from `t` until the first renewal after it. */
  renewedAfter(t: number): number | undefined {
    const at = this.renewals.find((r) => r >= t);
    return at === undefined ? undefined : at - t;
  }
}

/**
 * Problems with the leases etcd holds (read through `checker`): each of
 * `held` must be there, and nothing else but `others` (leases that existed
 * before the test, or that may linger until their TTL).
 */
export async function checkLeases(
  checker: Etcd<string>,
  held: bigint[],
  others: bigint[] = [],
): Promise<string[]> {
  const want = new Set(held.map(String));
  const ignore = new Set(others.map(String));
  let leaked: string[] = [];
  let gone: string[] = [];
  try {
    // A revoke acknowledged by one member reaches the others within a moment.
    await eventually(
      async () => {
        const got = new Set((await checker.leases()).map(String));
        leaked = [...got].filter((id) => !want.has(id) && !ignore.has(id));
        gone = [...want].filter((id) => !got.has(id));
        assert.equal(leaked.length + gone.length, 0);
      },
      { timeout: 3_000, interval: 100 },
    );
  } catch {
    // Reported below.
  }
  return [
    ...(leaked.length > 0 ? [`leases leaked: ${leaked.join(', ')}`] : []),
    ...(gone.length > 0 ? [`leases gone that should be held: ${gone.join(', ')}`] : []),
  ];
}
