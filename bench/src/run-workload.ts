/**
 * One workload, all implementations: seed once, start and warm up one child
 * per implementation (one at a time), then rounds of slices, one child at a
 * time in an order that rotates each round (A B C, B C A, C A B, ...).
 *
 * Around each slice the runner reads the CPU time of the etcd server, of the
 * measuring child and of the whole machine. What the machine used beyond our
 * own processes is load from elsewhere (other jobs on a shared box); a slice
 * that saw too much of it is measured again, a bounded number of times.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONNECTIONS, type Etcd } from '@etcdkit/client';
import type { EtcdCluster } from '@etcdkit/harness';
import { request } from 'undici';
import { machineBusyMicros, processCpuMicros } from './cpu-time.js';
import { MeasuredProcess, SetUpError } from './measured-process.js';
import {
  type ChildTask,
  IMPLEMENTATIONS,
  type Implementation,
  type SliceResult,
  writtenAs,
} from './protocol.js';
import type { Final, Sample } from './table.js';
import type { Workload } from './workloads.js';

export interface Settings {
  /** Rounds: measured slices per implementation. */
  slices: number;
  warmupOps: number;
  warmupMs: number;
  sliceOps: number;
  sliceMs: number;
  /** Time the whole run may spend waiting out other load and measuring slices again, ms. */
  disturbanceBudgetMs: number;
}

export interface RunOptions {
  settings: Settings;
  implementations: Implementation[];
  /** Where to write CPU profiles of the measured slices, and of which implementations. */
  profile: { dir: string; implementations: Implementation[] } | undefined;
  /** Shared by all workloads of a run: bounds the time spent on disturbed slices. */
  disturbance: Disturbance;
}

/** What other processes cost a run, and what is left of the time it may spend on them. */
export interface Disturbance {
  /** Time left for waiting out other load and measuring slices again, ms. */
  budgetMs: number;
  /** Slices measured again. */
  remeasured: number;
  /** Slices kept although others used more than MAX_OTHER_LOAD. */
  keptDisturbed: number;
}

/** An implementation left out of a workload because it could not be set up. */
export interface Skip {
  workload: string;
  implementation: string;
  /** The first line of the error. */
  reason: string;
}

export interface WorkloadRun {
  samples: Sample[];
  finals: Final[];
  failures: string[];
  /** Implementations left out because they could not be set up, and why. */
  skipped: Skip[];
}

/** Bounds on every wait for a child, beyond the time its work is given. */
const START_SLACK_MS = 30_000;
const SLICE_SLACK_MS = 30_000;
/** Share of the machine that others may use during a slice before it is measured again. */
export const MAX_OTHER_LOAD = 0.15;
const SLICE_TRIES = 3;
/** Longest wait for other load to pass before measuring a slice again. */
const QUIET_WAIT_MS = 5000;
const QUIET_PROBE_MS = 250;
const CORES = availableParallelism();
/** Width of an implementation's name in the progress lines. */
const NAME_WIDTH = Math.max(...IMPLEMENTATIONS.map((impl) => impl.length));

/** Compacts the whole history, so every slice runs on the same small store. */
async function compact(endpoint: string, etcd: Etcd<string>): Promise<void> {
  const { revision } = await etcd.set('bench/compact-mark', '');
  const res = await request(`${endpoint}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision: revision.toString(), physical: true }),
  });
  await res.body.text();
}

interface Slice {
  result: SliceResult;
  serverCpuMicros: number;
  /** CPU used by processes not ours, as a share of the whole machine. */
  otherLoad: number;
}

/** Share of the machine used by processes other than `pids` and the runner over a window. */
async function otherLoadOver(pids: number[], run: () => Promise<void>): Promise<number> {
  const oursBefore = pids.map(processCpuMicros);
  const machineBefore = machineBusyMicros();
  const runnerBefore = process.cpuUsage();
  const started = performance.now();
  await run();
  const wallMicros = (performance.now() - started) * 1000;
  const runner = process.cpuUsage(runnerBefore);
  const machine = machineBusyMicros() - machineBefore;
  const ours = pids.reduce((sum, pid, i) => sum + processCpuMicros(pid) - oursBefore[i]!, 0);
  const other = machine - ours - runner.user - runner.system;
  return Math.max(0, other) / (wallMicros * CORES);
}

/** Waits, at most `maxMs`, until other processes leave the machine nearly idle. */
async function waitForQuiet(pids: number[], maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const load = await otherLoadOver(pids, () => sleep(QUIET_PROBE_MS));
    if (load <= MAX_OTHER_LOAD) return;
  }
}

async function measureSlice(
  child: MeasuredProcess,
  etcdPid: number,
  idle: number[],
  sliceMs: number,
): Promise<Slice> {
  await child.ask({ type: 'prime' }, 'primed', SLICE_SLACK_MS);
  let result: SliceResult | undefined;
  let serverCpuMicros = 0;
  const etcdBefore = processCpuMicros(etcdPid);
  const otherLoad = await otherLoadOver([etcdPid, child.pid, ...idle], async () => {
    result = (await child.ask({ type: 'go' }, 'slice', sliceMs + SLICE_SLACK_MS)).result;
    serverCpuMicros = processCpuMicros(etcdPid) - etcdBefore;
  });
  return { result: result!, serverCpuMicros, otherLoad };
}

export async function runWorkload(
  w: Workload,
  options: RunOptions,
  cluster: EtcdCluster,
  admin: Etcd<string>,
): Promise<WorkloadRun> {
  const { settings } = options;
  const etcdPid = cluster.members[0]!.pid!;
  const out: WorkloadRun = { samples: [], finals: [], failures: [], skipped: [] };
  const fail = (impl: Implementation, err: unknown) => {
    const message = `${w.name} ${impl}: ${err instanceof Error ? err.message : String(err)}`;
    out.failures.push(message);
    console.error(`FAILED ${message}`);
  };

  await w.seed?.(admin);
  const impls = options.implementations.filter((impl) => w.prepare[writtenAs(impl)] !== undefined);
  // One child at a time warms up, so each has the machine to itself, as when measured.
  const children = new Map<Implementation, MeasuredProcess>();
  for (const impl of impls) {
    const task: ChildTask = {
      workload: w.name,
      implementation: impl,
      endpoint: cluster.endpoint,
      warmupOps: Math.min(settings.warmupOps, w.warmupOps ?? settings.warmupOps),
      warmupMs: settings.warmupMs,
      sliceOps: settings.sliceOps,
      sliceMs: settings.sliceMs,
      rawConnections: DEFAULT_CONNECTIONS,
    };
    if (options.profile?.implementations.includes(impl)) {
      task.profile = join(options.profile.dir, `${w.name}-${impl}.cpuprofile`);
    }
    try {
      const child = await MeasuredProcess.start(task, settings.warmupMs + START_SLACK_MS);
      children.set(impl, child);
      console.error(
        `${w.name.padEnd(8)} ${impl.padEnd(NAME_WIDTH)} warmed up with ${child.warmupOps} ops`,
      );
    } catch (err) {
      // One that cannot be set up (say, a client option this build lacks) is left out.
      if (err instanceof SetUpError) {
        const reason = err.message.split('\n')[0]!;
        out.skipped.push({ workload: w.name, implementation: impl, reason });
        console.error(`SKIPPED ${w.name} ${impl}: ${reason}`);
      } else fail(impl, err);
    }
  }

  try {
    for (let round = 1; round <= settings.slices; round++) {
      for (const impl of rotate(impls, round - 1)) {
        const child = children.get(impl);
        if (!child) continue;
        const idle = [...children.values()].filter((c) => c !== child).map((c) => c.pid);
        try {
          const slice = await measureWithRetries(
            () => compact(cluster.endpoint, admin),
            () => measureSlice(child, etcdPid, idle, settings.sliceMs),
            [etcdPid, child.pid, ...idle],
            options.disturbance,
            `${w.name.padEnd(8)} ${round}/${settings.slices} ${impl.padEnd(NAME_WIDTH)}`,
          );
          const { result, serverCpuMicros, otherLoad } = slice;
          const sample: Sample = {
            workload: w.name,
            implementation: impl,
            round,
            opsPerSec: result.ops / (result.elapsedMs / 1000),
            p50Ms: result.p50Ms,
            clientCpuMicrosPerOp: result.cpuMicros / result.ops,
            serverCpuMicrosPerOp: serverCpuMicros / result.ops,
            otherLoad,
          };
          out.samples.push(sample);
          console.error(
            `${w.name.padEnd(8)} ${round}/${settings.slices} ${impl.padEnd(NAME_WIDTH)}` +
              ` ${Math.round(sample.opsPerSec).toString().padStart(6)} ops/s` +
              `  client ${sample.clientCpuMicrosPerOp.toFixed(0).padStart(5)} µs/op` +
              `  etcd ${sample.serverCpuMicrosPerOp.toFixed(0).padStart(5)} µs/op` +
              `  others ${Math.round(otherLoad * 100)}%`,
          );
        } catch (err) {
          fail(impl, err);
          child.kill();
          children.delete(impl);
        }
      }
    }
    for (const [impl, child] of children) {
      try {
        const { result } = await child.ask({ type: 'stop' }, 'final', SLICE_SLACK_MS);
        out.finals.push({
          workload: w.name,
          implementation: impl,
          p50Ms: result.p50Ms,
          p99Ms: result.p99Ms,
          maxRssMb: result.maxRssBytes / 2 ** 20,
          handOffs: result.handOffs,
        });
        await child.exited(SLICE_SLACK_MS);
      } catch (err) {
        fail(impl, err);
      }
    }
  } finally {
    for (const child of children.values()) child.kill();
  }
  return out;
}

/**
 * Measures a slice; while other processes disturbed it and the run's budget
 * lasts, waits for them to quiet down and measures it again.
 */
async function measureWithRetries(
  reset: () => Promise<void>,
  measure: () => Promise<Slice>,
  pids: number[],
  disturbance: Disturbance,
  label: string,
): Promise<Slice> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    await reset();
    const slice = await measure();
    if (slice.otherLoad <= MAX_OTHER_LOAD) return slice;
    const load = `other processes used ${Math.round(slice.otherLoad * 100)}% of the machine`;
    if (attempt >= SLICE_TRIES || disturbance.budgetMs <= 0) {
      console.error(`${label} ${load}: kept`);
      disturbance.keptDisturbed++;
      return slice;
    }
    console.error(`${label} ${load}: measuring again`);
    disturbance.remeasured++;
    await waitForQuiet(pids, Math.min(QUIET_WAIT_MS, disturbance.budgetMs));
    disturbance.budgetMs -= performance.now() - started;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** Where `run.js --cpu-prof` writes its profiles. */
export const PROFILES = fileURLToPath(new URL('../profiles/', import.meta.url));
