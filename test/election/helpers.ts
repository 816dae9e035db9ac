/**
 * Helpers of the election tests: etcdctl as a child process with its output
 * collected line by line, and replica processes (replica.ts) that campaign
 * and report what they believe over IPC.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { findEtcdctl } from '@etcdkit/harness';

/** A running etcdctl command with its stdout split into lines. */
export class Etcdctl {
  readonly lines: string[] = [];
  readonly proc: ChildProcess;
  #stderr = '';

  constructor(endpoint: string, args: string[]) {
    this.proc = spawn(findEtcdctl(), [`--endpoints=${endpoint}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.proc.stdout?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.proc.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4000);
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends SIGINT (etcdctl resigns or stops observing on it) and waits for the exit. */
  async interrupt(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGINT');
    await exited;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGKILL');
    await exited;
  }
}

/** What a replica reports to the test over IPC. */
export type ReplicaMessage =
  | { type: 'ready'; lease: string }
  | { type: 'elected'; token: string }
  | { type: 'wrote'; token: string; seq: number }
  | { type: 'fenced'; token: string }
  | { type: 'lost'; token: string; reason: string }
  | { type: 'stopped'; token: string }
  | { type: 'error'; message: string };

export interface ReplicaConfig {
  endpoints: string[];
  name: string;
  id: string;
  ttl: number;
  /** The fenced resource: a key every leader writes through its guard. */
  resource: string;
}

/** A received message with the monotonic time of its arrival. */
export type Received = ReplicaMessage & { at: number };

const REPLICA_SCRIPT = new URL('./replica.js', import.meta.url);

/** A replica process (replica.ts by default): campaigns, and while it believes it leads, writes the fenced resource. */
export class Replica {
  readonly id: string;
  readonly proc: ChildProcess;
  readonly received: Received[] = [];
  #listeners = new Set<(m: Received) => void>();
  #stderr = '';

  constructor(config: ReplicaConfig, script: URL = REPLICA_SCRIPT) {
    this.id = config.id;
    this.proc = fork(script, [JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.proc.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4000);
    });
    this.proc.on('message', (m: ReplicaMessage) => {
      const item = { ...m, at: performance.now() };
      this.received.push(item);
      for (const listener of this.#listeners) listener(item);
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Tokens this replica announced it leads with, in order. */
  get elected(): bigint[] {
    return this.received.flatMap((m) => (m.type === 'elected' ? [BigInt(m.token)] : []));
  }

  /** Whether, by its last report, this replica believes it leads. */
  get believesLeading(): boolean {
    for (let i = this.received.length - 1; i >= 0; i--) {
      const m = this.received[i]!;
      if (m.type === 'elected') return true;
      if (m.type === 'lost') return false;
    }
    return false;
  }

  /** The first message from now on (or already received after index `from`) that matches. */
  next(
    match: (m: Received) => boolean,
    timeout = 20_000,
    from = this.received.length,
  ): Promise<Received> {
    const earlier = this.received.slice(from).find(match);
    if (earlier) return Promise.resolve(earlier);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`replica ${this.id}: no matching message within ${timeout} ms`));
      }, timeout);
      const listener = (m: Received) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(m);
      };
      this.#listeners.add(listener);
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  pause(): void {
    this.proc.kill('SIGSTOP');
  }

  resume(): void {
    this.proc.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await exited;
  }
}
