/**
 * Starts real etcd members as child processes for tests and benchmarks.
 *
 * How it works: every member gets two free loopback ports (client and peer) and
 * a temporary data directory. All members are spawned at once with a static
 * initial cluster, then each is polled on `/health` until it reports healthy.
 * `close()` kills every process and removes the directories; an `exit` hook
 * does the same for a process that dies without calling it, so a failed test
 * never leaves an etcd behind.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestCertificates } from './certs.js';
import { freePorts } from './ports.js';

export interface StartOptions {
  /** Number of members: 1 (default) or more for failover tests. */
  members?: number;
  /** Extra command-line flags for every member, e.g. `['--auto-compaction-retention=1']`. */
  flags?: string[];
  /** How long to wait for the cluster to become healthy, in ms. Default 30 s. */
  startTimeout?: number;
  /** Serve clients over TLS with these certificates (see makeCertificates). */
  tls?: TestCertificates & { clientCertAuth?: boolean };
}

const DEFAULT_START_TIMEOUT = 30_000;
const live = new Set<EtcdCluster>();

/** Finds the etcd binary through ETCD_BIN or PATH, or throws with install advice. */
export function findEtcd(): string {
  const fromEnv = process.env.ETCD_BIN;
  if (fromEnv) return fromEnv;
  return findOnPath('etcd');
}

/** Finds `etcdctl` beside etcd or on PATH; used by interop tests. */
export function findEtcdctl(): string {
  const fromEnv = process.env.ETCDCTL_BIN;
  if (fromEnv) return fromEnv;
  return findOnPath('etcdctl');
}

function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    const r = spawnSync(candidate, [name === 'etcdctl' ? 'version' : '--version'], {
      stdio: 'ignore',
    });
    if (r.status === 0) return candidate;
  }
  throw new Error(
    `${name} was not found. Set ETCD_BIN to an etcd binary, or install it: ` +
      `on Debian/Ubuntu run "apt-get install -y etcd-server" as root ` +
      `(or run "npm run setup", which does it for you).`,
  );
}

export class EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** Output of the process, kept for diagnostics when a start fails. */
  log = '';
  #args: string[];
  #bin: string;
  #proc: ChildProcess | undefined;

  readonly #tls: StartOptions['tls'];

  constructor(
    bin: string,
    name: string,
    clientPort: number,
    peerPort: number,
    dataDir: string,
    tls?: StartOptions['tls'],
  ) {
    this.#bin = bin;
    this.#tls = tls;
    this.name = name;
    this.clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
    this.dataDir = dataDir;
    this.#args = [];
  }

  /** @internal */
  configure(args: string[]): void {
    this.#args = args;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  get running(): boolean {
    return (
      this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null
    );
  }

  /** Spawns the process (initially, or again after `kill()`, keeping its data). */
  start(state: 'new' | 'existing' = 'existing'): void {
    if (this.running) throw new Error(`member ${this.name} is already running`);
    const args = [...this.#args, `--initial-cluster-state=${state}`];
    const proc = spawn(this.#bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.#proc = proc;
  }

  /** Sends a signal; SIGKILL and SIGTERM wait for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.#proc;
    if (!proc || !this.running) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  }

  /**
   * Freezes the process: it keeps its sockets open but answers nothing. Returns
   * once every thread is stopped, so no request sent afterwards slips through
   * on a loaded machine where the signal takes effect late.
   */
  pause(): void {
    const proc = this.#proc;
    if (!proc?.pid) return;
    proc.kill('SIGSTOP');
    const deadline = Date.now() + 5_000;
    while (!allThreadsStopped(proc.pid) && Date.now() < deadline) {
      // spin: the kernel stops the threads within milliseconds
    }
  }

  resume(): void {
    this.#proc?.kill('SIGCONT');
  }

  /** Kills the member and starts it again on the same ports and data. */
  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    this.start('existing');
    await this.waitHealthy(DEFAULT_START_TIMEOUT);
  }

  /** Waits until this member reports healthy on `/health`. */
  async waitHealthy(timeout: number): Promise<void> {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`etcd member ${this.name} exited during start:\n${this.log}`);
      }
      try {
        if ((await this.#health()) === 'true') return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`etcd member ${this.name} was not healthy within ${timeout} ms:\n${this.log}`);
  }

  async #health(): Promise<string | undefined> {
    const tls = this.#tls;
    if (!tls) {
      const res = await fetch(`${this.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { health?: string }).health;
    }
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsGet(
        `${this.clientUrl}/health`,
        { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey, timeout: 1000 },
        (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve(text));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    return (JSON.parse(body) as { health?: string }).health;
  }

  /** @internal kills without waiting; used by the exit hook. */
  killNow(): void {
    if (this.running) {
      this.#proc?.kill('SIGCONT');
      this.#proc?.kill('SIGKILL');
    }
  }
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  readonly #root: string;
  #closed = false;

  constructor(members: EtcdMember[], root: string) {
    this.members = members;
    this.#root = root;
    live.add(this);
  }

  /** Client URLs of all members. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** The first member's client URL. */
  get endpoint(): string {
    return this.members[0]!.clientUrl;
  }

  /** Finds the member that is currently the raft leader. */
  async leader(): Promise<EtcdMember> {
    for (const m of this.members) {
      if (!m.running) continue;
      try {
        const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, {
          method: 'POST',
          body: '{}',
          signal: AbortSignal.timeout(2000),
        });
        const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
        if (body.leader && body.leader === body.header?.member_id) return m;
      } catch {
        // try the next member
      }
    }
    throw new Error('no member reports itself as leader');
  }

  /** Kills every member and removes the data directories. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    for (const m of this.members) m.resume();
    await Promise.all(this.members.map((m) => m.kill('SIGKILL')));
    rmSync(this.#root, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  closeNow(): void {
    for (const m of this.members) m.killNow();
    rmSync(this.#root, { recursive: true, force: true });
  }
}

process.on('exit', () => {
  for (const c of live) c.closeNow();
});

/** Starts one member, or a cluster of `members`, and waits until all are healthy. */
export async function startEtcd(options: StartOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 1;
  const bin = findEtcd();
  const timeout = options.startTimeout ?? DEFAULT_START_TIMEOUT;
  // A port found free may be taken before etcd binds it; try a few times.
  for (let attempt = 1; ; attempt++) {
    const cluster = await spawnCluster(bin, count, options.flags ?? [], options.tls);
    try {
      await Promise.all(cluster.members.map((m) => m.waitHealthy(timeout)));
      return cluster;
    } catch (err) {
      const portClash = cluster.members.some((m) => m.log.includes('address already in use'));
      await cluster.close();
      if (!portClash || attempt >= 3) throw err;
    }
  }
}

async function spawnCluster(
  bin: string,
  count: number,
  flags: string[],
  tls: StartOptions['tls'],
): Promise<EtcdCluster> {
  const root = mkdtempSync(join(tmpdir(), 'etcdkit-etcd-'));
  const ports = await freePorts(count * 2);
  const members: EtcdMember[] = [];
  for (let i = 0; i < count; i++) {
    const name = `m${i}`;
    members.push(
      new EtcdMember(bin, name, ports[2 * i]!, ports[2 * i + 1]!, join(root, name), tls),
    );
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `etcdkit-${process.pid}-${Date.now()}`;
  for (const m of members) {
    m.configure([
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${token}`,
      // Fast elections keep failover tests short; loopback latency is tiny.
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--log-level=warn',
      ...(tls
        ? [
            `--cert-file=${tls.certFile}`,
            `--key-file=${tls.keyFile}`,
            // etcd 3.4 demands client certificates whenever it has a trusted CA file.
            ...(tls.clientCertAuth
              ? [`--trusted-ca-file=${tls.caFile}`, '--client-cert-auth']
              : []),
          ]
        : []),
      ...flags,
    ]);
  }
  const cluster = new EtcdCluster(members, root);
  for (const m of members) m.start('new');
  return cluster;
}

/** Whether every thread of `pid` is stopped (state T), read from /proc (Linux). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The state follows the command name, which is in parentheses.
      return /^[tT]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
    });
  } catch {
    return true; // no /proc, or the process is gone: nothing more to wait for
  }
}
