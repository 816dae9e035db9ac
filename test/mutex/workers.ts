/**
 * The parent side of the safety tests: lock worker processes (worker.ts) and a
 * scenario that runs several of them against one lock, a fence checker and a
 * fenced etcd key, then judges the record.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Etcd, Op, type Watcher } from '@etcdkit/client';
import { eventually, uniquePrefix } from '@etcdkit/harness';
import { FenceChecker } from './fence-checker.js';
import { assertIncreasing } from './helpers.js';
import {
  type ProblemReport,
  padToken,
  type SectionReport,
  type WorkerConfig,
  type WorkerMessage,
} from './protocol.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.js', import.meta.url));
const running = new Set<WorkerProcess>();

// A failed test must not leave workers behind (a stopped one would never exit).
process.on('exit', () => {
  for (const worker of running) worker.killNow();
});

export class WorkerProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly sections: SectionReport[] = [];
  readonly problems: ProblemReport[] = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  stderr = '';
  #exited = false;

  constructor(config: WorkerConfig) {
    this.id = config.id;
    this.child = spawn(process.execPath, [WORKER_SCRIPT, JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    running.add(this);
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-10_000);
    });
    this.exited = once(this.child, 'exit').then(() => {
      this.#exited = true;
      running.delete(this);
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.child.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'section') this.sections.push(message);
        else if (message.type === 'problem') this.problems.push(message);
      });
      void this.exited.then(() =>
        reject(new Error(`worker ${this.id} exited before it was ready:\n${this.stderr}`)),
      );
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.#exited;
  }

  /** SIGSTOP: the process keeps its sockets but runs nothing, timers included. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** SIGKILL: a crash, with no chance to release anything. */
  async kill(): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Asks the worker to finish its sections and exit; kills it if it does not. */
  async stop(timeout = 30_000): Promise<void> {
    if (this.#exited) return;
    this.resume();
    if (this.child.connected) this.child.send({ type: 'stop' });
    // An unreferenced timer: it must not keep the test process alive once the worker is gone.
    const timer = sleep(timeout, 'timeout' as const, { ref: false });
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      this.killNow();
      throw new Error(`worker ${this.id} did not stop within ${timeout} ms:\n${this.stderr}`);
    }
  }

  killNow(): void {
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
  }
}

export interface ScenarioOptions {
  label: string;
  endpoints: string[];
  /** Worker processes. Default 3. */
  workers?: number;
  /** Concurrent lockers per process, on one Mutex and one session. Default 5. */
  lockers?: number;
  /** Session TTL of each process; default: the client's shared session. */
  ttl?: number;
  /** Time inside each section, in ms. Default 5. */
  holdMs?: number;
}

export interface EtcdWrite {
  token: bigint;
  id: string;
}

/**
 * Worker processes contending for one lock. Each section enters the checker,
 * writes `resource` in etcd in a txn guarded by `lock.guard()` and by the
 * `highest` key (the highest token written so far must be lower), and leaves.
 * The scenario watches `resource` to see every write etcd accepted.
 */
export class Scenario {
  readonly checker: FenceChecker;
  readonly client: Etcd;
  readonly name: string;
  readonly resource: string;
  readonly workers: WorkerProcess[];
  /** Every write of `resource` that etcd committed, in revision order. */
  readonly writes: EtcdWrite[] = [];
  readonly #watcher: Watcher;
  #watchError: unknown;

  private constructor(
    checker: FenceChecker,
    client: Etcd,
    name: string,
    resource: string,
    workers: WorkerProcess[],
    watcher: Watcher,
  ) {
    this.checker = checker;
    this.client = client;
    this.name = name;
    this.resource = resource;
    this.workers = workers;
    this.#watcher = watcher;
    void this.#collect();
  }

  static async start(options: ScenarioOptions): Promise<Scenario> {
    const checker = await FenceChecker.start();
    const base = uniquePrefix(options.label);
    const name = `${base}lock`;
    const resource = `${base}resource`;
    const highest = `${base}highest-token`;
    const client = new Etcd({ endpoints: options.endpoints });
    const setup = await client
      .txn()
      .success(Op.put(highest, padToken(0n)), Op.put(resource, { token: '0', id: 'initial' }))
      .commit();
    const watcher = await client.watch(resource, { startRevision: setup.revision + 1n });
    const workers = Array.from(
      { length: options.workers ?? 3 },
      (_, i) =>
        new WorkerProcess({
          id: `w${i}`,
          endpoints: options.endpoints,
          lock: name,
          resource,
          highest,
          checker: checker.url,
          lockers: options.lockers ?? 5,
          holdMs: options.holdMs ?? 5,
          ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
        }),
    );
    const scenario = new Scenario(checker, client, name, resource, workers, watcher);
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (err) {
      await scenario.close();
      throw err;
    }
    return scenario;
  }

  async #collect(): Promise<void> {
    try {
      for await (const batch of this.#watcher) {
        for (const event of batch.events) {
          if (event.type !== 'put') continue;
          const value = event.kv.value as { token: string; id: string };
          this.writes.push({ token: BigInt(value.token), id: value.id });
        }
      }
    } catch (err) {
      this.#watchError = err;
    }
  }

  /** Waits until `count` sections have been completed (exit accepted) in all. */
  async waitForSections(count: number, timeout = 60_000): Promise<void> {
    await eventually(
      () =>
        assert.ok(
          this.checker.completed >= count,
          `${this.checker.completed} of ${count} sections completed; problems: ${this.problems()
            .slice(-3)
            .map((p) => `${p.worker} ${p.where}: ${p.error}`)
            .join(' | ')}`,
        ),
      { timeout, interval: 50 },
    );
  }

  /** Stops every worker that still runs and waits until etcd's writes have all been seen. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    const last = await this.client.get(this.resource);
    assert.ok(last);
    await eventually(() => {
      if (this.#watchError) throw this.#watchError;
      assert.ok(this.#watcher.nextRevision > last.modRevision, 'every write of the resource seen');
    });
  }

  reports(): SectionReport[] {
    return this.workers.flatMap((w) => w.sections);
  }

  problems(): ProblemReport[] {
    return this.workers.flatMap((w) => w.problems);
  }

  /** A count of problems the workers reported, by where and error name, for diagnostics. */
  problemSummary(): string {
    const counts = new Map<string, number>();
    const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const p of this.problems()) add(`${p.where}: ${p.error.split(':')[0]}`);
    for (const r of this.reports()) if (r.writeError) add(`write: ${r.writeError.split(':')[0]}`);
    return counts.size === 0 ? 'none' : [...counts].map(([k, n]) => `${n} x ${k}`).join(', ');
  }

  /** Tokens of locks whose session was lost during their section (lock.signal aborted). */
  sessionLosses(): bigint[] {
    return this.reports()
      .filter((r) => r.lost !== undefined)
      .map((r) => BigInt(r.token));
  }

  /**
   * The safety verdict, for every scenario. `frozen` are the tokens of holders
   * the test froze or killed inside their section. Only those, and holders whose
   * session was lost during their section (the lock's signal says so), may be
   * overtaken and have their late calls refused; a frozen holder must never get
   * a write into etcd.
   */
  assertSafe(frozen: readonly bigint[] = []): void {
    const checker = this.checker;
    const lost = new Set([...frozen, ...this.sessionLosses()]);
    // Accepted (fenced) sections never overlap, and their tokens strictly increase.
    assert.deepEqual(checker.violations(), []);
    for (const o of checker.overlaps) {
      assert.ok(lost.has(o.open), `section ${o.open} was overtaken by ${o.entering}`);
    }
    for (const r of checker.refused) {
      assert.ok(lost.has(r.token), `the checker refused ${r.op} of ${r.id} (token ${r.token})`);
    }
    // etcd saw the same: guarded writes in strictly increasing token order.
    const written = this.writes.map((w) => w.token);
    assertIncreasing(written, 'tokens written to etcd');
    for (const token of written) {
      assert.ok(checker.sections.has(token), `etcd write of token ${token} outside any section`);
      assert.ok(!frozen.includes(token), `the frozen holder (token ${token}) wrote to etcd`);
    }
    // What the workers saw agrees, and every section of a lock not lost went through.
    const writtenSet = new Set(written);
    for (const report of this.reports()) {
      const token = BigInt(report.token);
      if (report.written === true) assert.ok(writtenSet.has(token), `write of ${report.id} seen`);
      if (lost.has(token)) continue;
      assert.equal(report.entered, true, `${report.id} entered`);
      assert.equal(report.exited, true, `${report.id} exited`);
      assert.notEqual(report.written, false, `${report.id}: the guarded write was refused`);
      assert.match(report.release, /^released/, `${report.id} released its lock`);
    }
  }

  async close(): Promise<void> {
    for (const worker of this.workers) worker.killNow();
    await Promise.all(this.workers.map((w) => w.exited));
    await this.#watcher.cancel();
    await this.client.close();
    await this.checker.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
