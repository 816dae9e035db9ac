/**
 * The benchmark runner: `node bench/dist/run.js [options] [workload...]`.
 *
 * How it works: one etcd is started through the test harness, its data on
 * disk as users run it (`--tmpfs` puts it on /dev/shm instead, a second
 * configuration in which disk syncs do not hide the clients' costs; the
 * printed settings name the one used). Each workload then
 * runs every implementation in a child process of its own, in interleaved
 * slices (run-workload.ts), and the tables of medians and paired ratios are
 * printed as Markdown (table.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from '@etcdkit/client';
import { type EtcdCluster, startEtcd } from '@etcdkit/harness';
import {
  type ColdStartRun,
  coldStartRatioTable,
  coldStartTable,
  coldStartVsEtcd3,
  runColdStart,
} from './cold-start.js';
import { processCpuMicros } from './cpu-time.js';
import { IMPLEMENTATIONS, type Implementation } from './protocol.js';
import { REFERENCE_LABEL, referenceTable } from './reference.js';
import {
  type Disturbance,
  MAX_OTHER_LOAD,
  PROFILES,
  type RunOptions,
  runWorkload,
  type Settings,
  type Skip,
} from './run-workload.js';
import { median } from './stats.js';
import {
  type Final,
  figuresTable,
  grpcRatioTable,
  handOffTable,
  ratioTable,
  type Sample,
  summarize,
  type WorkloadRow,
} from './table.js';
import { WORKLOADS, type Workload } from './workloads.js';

/**
 * About four and a half minutes for the seven workloads on two cores, plus at
 * most 45 s if other jobs load the machine. V8 needs about 5,000 calls of a
 * small operation before its CPU cost per call stops falling, hence the warm-up.
 */
const FULL: Settings = {
  slices: 6,
  warmupOps: 6000,
  warmupMs: 4000,
  sliceOps: 50_000,
  sliceMs: 1200,
  disturbanceBudgetMs: 45_000,
};
/** A smoke run: does every workload work with every implementation? */
const QUICK: Settings = {
  slices: 1,
  warmupOps: 200,
  warmupMs: 300,
  sliceOps: 2000,
  sliceMs: 300,
  disturbanceBudgetMs: 5000,
};
/** Rounds of fresh processes in the cold-start workload (cold-start.ts). */
const COLD_START_ROUNDS = { full: 10, quick: 2 };
const COLD_START = 'cold-start';
const USAGE = `usage: node bench/dist/run.js [options] [workload...]

  workload          names or parts of names to run (default: all):
                    ${[...WORKLOADS.map((w) => w.name), COLD_START].join(', ')}
  --quick           one short slice of each (${COLD_START}: ${COLD_START_ROUNDS.quick} rounds), to check that everything works
  --slices <n>      measured slices per implementation (default ${FULL.slices})
  --slice-ms <ms>   length of a slice (default ${FULL.sliceMs})
  --only <impls>    comma-separated implementations (default: ${IMPLEMENTATIONS.join(',')});
                    ${COLD_START} always runs all of its programs. One that cannot be set up
                    (etcdkit-grpc with a client without the gRPC transport) is skipped
  --tmpfs           keep etcd's data on /dev/shm, not on disk (the default temporary directory)
  --cpu-prof <impls>
                    write CPU profiles of the measured slices of these implementations
                    (comma-separated) to bench/profiles/; their figures then include
                    the profiler's cost. Read them with node bench/dist/profile.js
  --json <file>     also write every sample as JSON
  --help            this text`;

interface Options {
  settings: Settings;
  workloads: Workload[];
  /** Rounds of the cold-start workload; 0 when it is not selected. */
  coldStartRounds: number;
  implementations: Implementation[];
  tmpfs: boolean;
  cpuProf: Implementation[];
  json: string | undefined;
}

function wholeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${what} takes a whole number`);
  return n;
}

function implementationList(text: string | undefined): Implementation[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',') as Implementation[];
  for (const impl of list) {
    if (!IMPLEMENTATIONS.includes(impl)) throw new Error(`unknown implementation ${impl}`);
  }
  return list;
}

function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      slices: { type: 'string' },
      'slice-ms': { type: 'string' },
      only: { type: 'string' },
      tmpfs: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const settings = { ...(values.quick ? QUICK : FULL) };
  settings.slices = wholeNumber(values.slices, '--slices') ?? settings.slices;
  settings.sliceMs = wholeNumber(values['slice-ms'], '--slice-ms') ?? settings.sliceMs;
  const selected = (name: string) =>
    positionals.length === 0 || positionals.some((p) => name.includes(p));
  const workloads = WORKLOADS.filter((w) => selected(w.name));
  const coldStartRounds = selected(COLD_START)
    ? values.quick
      ? COLD_START_ROUNDS.quick
      : COLD_START_ROUNDS.full
    : 0;
  if (workloads.length === 0 && coldStartRounds === 0)
    throw new Error(`no workload matches ${positionals.join(' ')}`);
  const implementations = implementationList(values.only) ?? [...IMPLEMENTATIONS];
  return {
    settings,
    workloads,
    coldStartRounds,
    implementations,
    tmpfs: values.tmpfs,
    cpuProf: implementationList(values['cpu-prof']) ?? [],
    json: values.json,
  };
}

/** The version in the package.json of an installed package, found above its entry point. */
function packageVersion(name: string): string {
  let dir = new URL('.', import.meta.resolve(name));
  for (let depth = 0; depth < 5; depth++) {
    const file = new URL('package.json', dir);
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}

/** The commit the client was built from, and whether its sources differ from it. */
function clientRevision(): string {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: 'pipe' }).trim();
    const dirty = git('status', '--porcelain', '--', 'packages/client') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** Starts etcd with its data on disk, or on tmpfs when asked and there is one. */
async function startServer(tmpfs: boolean): Promise<{ cluster: EtcdCluster; dataOn: string }> {
  const shm = '/dev/shm';
  const useShm = tmpfs && existsSync(shm);
  const saved = process.env.TMPDIR;
  if (useShm) process.env.TMPDIR = shm;
  try {
    const cluster = await startEtcd();
    return { cluster, dataOn: useShm ? 'tmpfs (/dev/shm)' : `disk (${os.tmpdir()})` };
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Idle CPU of the server, µs per second, to read the per-operation figures against. */
async function idleCpu(pid: number): Promise<number> {
  const before = processCpuMicros(pid);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return processCpuMicros(pid) - before;
}

function describeRun(
  options: Options,
  etcdVersion: string,
  dataOn: string,
  idle: number,
  samples: readonly Sample[],
  seconds: number,
): string[] {
  const { settings } = options;
  const cpus = os.cpus();
  const load = samples.map((s) => s.otherLoad);
  return [
    `Date: ${new Date().toISOString()}`,
    `Versions: etcd ${etcdVersion}, Node ${process.version}, etcd3 ${packageVersion('etcd3')}, ` +
      `@etcdkit/client ${packageVersion('@etcdkit/client')} (commit ${clientRevision()}), ` +
      `undici ${packageVersion('undici')}`,
    `Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown'}), ` +
      `${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; ` +
      `etcd data on ${dataOn}; etcd idle CPU ${Math.round(idle / 1000)} ms/s`,
    `Settings: per implementation and workload, a warm-up of up to ${settings.warmupOps} ops / ` +
      `${settings.warmupMs} ms, then ${settings.slices} rounds of interleaved slices of up to ` +
      `${settings.sliceOps} ops / ${settings.sliceMs} ms. ops/s and CPU are medians over the ` +
      `slices, ± is (max − min) / median of ops/s, p50/p99 are over all measured operations`,
    `Load from other processes during the slices: median ${Math.round(median(load) * 100)}%, ` +
      `max ${Math.round(Math.max(0, ...load) * 100)}% of the machine`,
    `Workloads: ${[
      ...options.workloads.map((w) => `${w.name} = ${w.title}`),
      ...(options.coldStartRounds > 0
        ? [
            `${COLD_START} = fresh processes that import, put one key, close and exit, ` +
              `${options.coldStartRounds} interleaved rounds`,
          ]
        : []),
    ].join('; ')}`,
    `Run time: ${Math.round(seconds)} s`,
  ];
}

function describeDisturbance(d: Disturbance): string {
  const limit = `${Math.round(MAX_OTHER_LOAD * 100)}%`;
  return (
    `Slices during which other processes used more than ${limit} of the machine: ` +
    `${d.remeasured} measured again, ${d.keptDisturbed} kept (retry budget spent)`
  );
}

/** One line per implementation and reason, naming the workloads it was left out of. */
function describeSkips(skips: readonly Skip[]): string[] {
  const groups = new Map<string, { implementation: string; reason: string; workloads: string[] }>();
  for (const s of skips) {
    const id = `${s.implementation}\n${s.reason}`;
    const group = groups.get(id) ?? {
      implementation: s.implementation,
      reason: s.reason,
      workloads: [],
    };
    group.workloads.push(s.workload);
    groups.set(id, group);
  }
  return [...groups.values()].map(
    (g) => `SKIPPED ${g.implementation} in ${g.workloads.join(', ')}: ${g.reason}`,
  );
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const { cluster, dataOn } = await startServer(options.tmpfs);
  // An interrupted run still stops etcd: the harness kills it on exit.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const admin = createClient({ endpoints: cluster.endpoint, codec: 'string' });
  const samples: Sample[] = [];
  const finals: Final[] = [];
  const failures: string[] = [];
  const skipped: Skip[] = [];
  let coldStart: ColdStartRun[] = [];
  try {
    const server = await admin.version();
    const idle = await idleCpu(cluster.members[0]!.pid!);
    if (options.cpuProf.length > 0) mkdirSync(PROFILES, { recursive: true });
    const runOptions: RunOptions = {
      settings: options.settings,
      implementations: options.implementations,
      profile:
        options.cpuProf.length > 0
          ? { dir: PROFILES, implementations: options.cpuProf }
          : undefined,
      disturbance: {
        budgetMs: options.settings.disturbanceBudgetMs,
        remeasured: 0,
        keptDisturbed: 0,
      },
    };
    for (const w of options.workloads) {
      const run = await runWorkload(w, runOptions, cluster, admin);
      samples.push(...run.samples);
      finals.push(...run.finals);
      failures.push(...run.failures);
      skipped.push(...run.skipped);
    }
    if (options.coldStartRounds > 0) {
      try {
        const cold = await runColdStart(cluster.endpoint, { rounds: options.coldStartRounds });
        coldStart = cold.runs;
        skipped.push(...cold.skipped);
      } catch (err) {
        failures.push(`${COLD_START}: ${(err as Error).message}`);
      }
    }

    const rows: WorkloadRow[] = options.workloads.map((w) => {
      const byImplementation: WorkloadRow['byImplementation'] = {};
      for (const impl of IMPLEMENTATIONS) {
        const own = samples.filter((s) => s.workload === w.name && s.implementation === impl);
        const final = finals.find((f) => f.workload === w.name && f.implementation === impl);
        if (own.length > 0) byImplementation[impl] = summarize(own, final);
      }
      const mine = samples.filter((s) => s.workload === w.name);
      return { name: w.name, concurrency: w.concurrency, byImplementation, samples: mine };
    });
    const seconds = (Date.now() - started) / 1000;
    const lines = describeRun(options, server.server, dataOn, idle, samples, seconds);
    lines.splice(5, 0, describeDisturbance(runOptions.disturbance));
    // Slices, their load and their disturbance say nothing of a run of cold starts alone.
    if (rows.length === 0) lines.splice(3, 3);
    console.log(`${lines.join('  \n')}\n`);
    if (rows.length > 0) {
      console.log(`${figuresTable(rows, options.implementations)}\n`);
      const etcdkitRan = samples.some((s) => s.implementation === 'etcdkit');
      if (etcdkitRan) console.log(`${ratioTable(rows)}\n`);
      const grpc = grpcRatioTable(rows);
      if (grpc) console.log(`gRPC, paired by round:\n\n${grpc}\n`);
      const handOffs = handOffTable(finals);
      if (handOffs)
        console.log(`Lock hand-offs, from a release call to the next acquire:\n\n${handOffs}\n`);
    }
    if (coldStart.length > 0) {
      console.log(`${coldStartTable(coldStart)}\n`);
      console.log(`${coldStartRatioTable(coldStart)}\n`);
    }
    const before = referenceTable(
      samples,
      finals,
      coldStart.length > 0 ? coldStartVsEtcd3(coldStart) : undefined,
    );
    if (before) console.log(`Before and now; before is an ${REFERENCE_LABEL}:\n\n${before}\n`);
    if (options.cpuProf.length > 0) console.log(`CPU profiles are in ${PROFILES}`);
    if (options.json) {
      writeFileSync(
        options.json,
        `${JSON.stringify({ lines, samples, finals, coldStart }, null, 2)}\n`,
      );
    }
    for (const line of describeSkips(skipped)) console.log(line);
    for (const f of failures) console.log(`FAILED ${f}`);
  } finally {
    await admin.close();
    await cluster.close();
  }
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
