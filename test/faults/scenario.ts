/**
 * A fault scenario: one client under test with a workload, a watcher on the
 * workload's keys and a session, all started before a fault and checked after
 * it, with the failover times printed.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import {
  type AuthOptions,
  createClient,
  type Etcd,
  type Session,
  type Watcher,
  type WatchStreamOptions,
} from '@etcdkit/client';
import { eventually, uniquePrefix } from '@etcdkit/harness';
import { checkLeases, checkWatch, SessionLog, WatchLog } from './checks.js';
import {
  checkWrites,
  describeError,
  ms,
  readAll,
  Workload,
  type WorkloadOptions,
} from './workload.js';

export interface ScenarioOptions {
  label: string;
  /** Endpoints of the client under test, in order. */
  endpoints: string[];
  /** Endpoints of the checker: the members themselves. */
  direct: string[];
  /** The client's deadline per call, in ms. */
  timeout: number;
  /** TTL of the session, in seconds. */
  sessionTtl: number;
  watch?: WatchStreamOptions;
  auth?: AuthOptions;
  /** Credentials of the checker, on a cluster with auth. */
  checkerAuth?: AuthOptions;
  /** Key prefix; default a unique one. */
  keyPrefix?: string;
  workload?: WorkloadOptions;
}

/** Watch streams notice a hung member within about a second and a half. */
export const FAST_WATCH: WatchStreamOptions = { progressInterval: 500, progressTimeout: 1_000 };

export interface FinishChecks {
  /** The fault was shorter than the session's TTL. Default true. */
  sessionMustSurvive?: boolean;
  /** The keepalives must have moved on while the fault lasted. Default false. */
  renewDuringFault?: boolean;
}

/**
 * One client under test with a workload, a watcher on the workload's keys and
 * a session, all started before the fault. `finish` stops the workload, runs
 * every check, prints the failover times and closes everything.
 */
export class Scenario {
  readonly client: Etcd<string>;
  readonly checker: Etcd<string>;
  readonly workload: Workload;
  readonly options: ScenarioOptions;
  watcher!: Watcher<string>;
  watchLog!: WatchLog;
  session!: Session;
  sessionLog!: SessionLog;
  leasesBefore: bigint[] = [];
  /** When the fault began (performance.now()). */
  faultAt = 0;
  /** When the fault ended. */
  healedAt: number | undefined;

  private constructor(options: ScenarioOptions) {
    this.options = options;
    const keyPrefix = options.keyPrefix ?? uniquePrefix(options.label);
    this.client = createClient({
      endpoints: options.endpoints,
      keyPrefix,
      codec: 'string',
      timeout: options.timeout,
      watch: options.watch ?? FAST_WATCH,
      ...(options.auth ? { auth: options.auth } : {}),
    });
    this.checker = createClient({
      endpoints: options.direct,
      keyPrefix,
      codec: 'string',
      ...(options.checkerAuth ? { auth: options.checkerAuth } : {}),
    });
    this.workload = new Workload(this.client, 'w/', options.workload);
  }

  static async begin(options: ScenarioOptions): Promise<Scenario> {
    const s = new Scenario(options);
    try {
      s.leasesBefore = await s.checker.leases();
      // The first call detects the API prefix; the fault must not be what it meets first.
      await s.client.get('w/');
      s.watcher = await s.client.watchdir('w/');
      s.watchLog = new WatchLog(s.watcher);
      s.session = await s.client.session({ ttl: options.sessionTtl });
      s.sessionLog = new SessionLog(s.session);
      s.workload.start();
      await eventually(() => assert.ok(s.workload.ackedSince(0) >= 20, 'writes are flowing'), {
        timeout: 15_000,
      });
    } catch (err) {
      await s.#close();
      throw err;
    }
    return s;
  }

  /** Marks the start of the fault and returns the time. */
  fault(): number {
    this.faultAt = performance.now();
    return this.faultAt;
  }

  /** Marks the end of the fault. */
  healed(): void {
    this.healedAt = performance.now();
  }

  /** Waits until writes started after the fault are acknowledged again. */
  async writesRecovered(timeout = 20_000): Promise<void> {
    await eventually(
      () =>
        assert.ok(
          this.workload.ackedSince(this.faultAt) >= 5,
          `writes resumed after the fault (${this.workload.summary()}; ${this.workload.errorsSince(this.faultAt).join('; ')})`,
        ),
      { timeout, interval: 50 },
    );
  }

  /** The failover times, as printed. */
  timings(): string {
    const t = this.faultAt;
    const w = this.workload;
    const parts = [
      `writes resumed after ${ms(w.writesResumed(t))}`,
      `reads after ${ms(w.readsResumed(t))}`,
      `watch resumed after ${ms(this.watchLog.resumedAfter(t), 'no disconnect')}`,
      `keepalive renewed after ${ms(this.sessionLog.renewedAfter(t))}`,
    ];
    if (this.healedAt !== undefined) parts.push(`fault lasted ${ms(this.healedAt - t)}`);
    return parts.join(', ');
  }

  /**
   * Stops the workload and checks everything: writes, watch, session, leases.
   * The fault was shorter than the session's TTL, so the session must not be
   * reported lost. With `renewDuringFault`, the fault is too long for a
   * renewal from before it to carry the session through, so the keepalives
   * must have moved to another member while it lasted.
   */
  async finish(t: TestContext, name: string, checks: FinishChecks = {}): Promise<void> {
    const { sessionMustSurvive = true, renewDuringFault = false } = checks;
    const problems: string[] = [];
    try {
      // The workload keeps running until the session has proven itself past the fault.
      const unsettled = await this.#settleSession();
      if (unsettled) problems.push(unsettled);
      await this.workload.stop();
      t.diagnostic(`${name}: ${this.timings()}`);
      t.diagnostic(`${name}: ${this.workload.summary()}`);
      for (const line of this.workload.errorsSince(0).slice(0, 8)) t.diagnostic(`  ${line}`);
      const kvs = await readAll(this.checker, this.workload.dir);
      problems.push(...checkWrites(this.workload, kvs));
      problems.push(...(await checkWatch(this.watchLog, kvs)));
      const lost = this.sessionLog.lost;
      if (sessionMustSurvive && lost) {
        problems.push(
          `session lost ${ms(this.sessionLog.lostAt! - this.faultAt)} after the fault began ` +
            `(TTL ${this.options.sessionTtl} s): ${lost.message}`,
        );
      }
      const renewed = this.sessionLog.renewedAfter(this.faultAt);
      const faultLasted = (this.healedAt ?? performance.now()) - this.faultAt;
      if (renewDuringFault && !lost && (renewed === undefined || renewed > faultLasted)) {
        problems.push(
          `the session was not renewed while the fault lasted (${ms(faultLasted)}; first renewal ` +
            `after ${ms(renewed)}): its keepalives stayed on the failed member`,
        );
      }
      const held = lost ? [] : [this.session.lease];
      if (!lost) {
        const info = await this.checker.timetolive(this.session.lease);
        if (!info) problems.push(`the session's lease ${this.session.lease} is gone in etcd`);
      }
      // A session that gave up on its lease does not revoke it: it may linger until its TTL.
      const lingering = lost ? [this.session.lease] : [];
      const others = [...this.leasesBefore, ...lingering];
      problems.push(...(await checkLeases(this.checker, held, others)));
      await this.session.close().catch((err: unknown) => {
        problems.push(`session close failed: ${describeError(err)}`);
      });
      problems.push(...(await checkLeases(this.checker, [], others)));
    } finally {
      await this.#close();
    }
    for (const p of problems) t.diagnostic(`${name}: PROBLEM ${p}`);
    assert.deepEqual(problems, [], `${name}: ${problems.length} problems`);
  }

  /**
   * Waits until the session was lost, or until it was renewed after the fault
   * ended and a TTL has passed since the fault began: only then can it no
   * longer be living on a renewal from before the fault. (For a long TTL,
   * where that wait would be long, a renewal after the fault is proof enough.)
   */
  async #settleSession(): Promise<string | undefined> {
    const ttlMs = this.options.sessionTtl * 1000;
    const endOfFault = this.healedAt ?? this.faultAt;
    const until = this.faultAt + Math.min(ttlMs, 8_000) + 500;
    try {
      await eventually(
        () => {
          if (this.sessionLog.lost) return;
          assert.ok(performance.now() >= until, 'a TTL has passed since the fault began');
          assert.ok(this.sessionLog.renewedAfter(endOfFault) !== undefined, 'renewed since');
        },
        { timeout: ttlMs + 15_000, interval: 100 },
      );
      return undefined;
    } catch {
      return 'the session was neither renewed after the fault nor reported lost';
    }
  }

  async #close(): Promise<void> {
    await this.workload.stop();
    await this.watcher?.cancel();
    await this.session?.close().catch(() => undefined);
    await this.client.close();
    await this.checker.close();
  }
}
