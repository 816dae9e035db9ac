/**
 * The cold-start workload: a fresh process that imports a client, puts one
 * key, closes the client and exits, as a short script or a shell command
 * does. Six programs take turns, in rounds whose order rotates:
 *
 * - `etcdkit`, `etcd3`: cold-start-child.js with that library, exiting by
 *   itself once the client is closed.
 * - `etcdkit-grpc`: the etcdkit script with a client that calls etcd over
 *   gRPC.
 * - `etcdkit-liftoff-only`: the same etcdkit script under `node
 *   --liftoff-only`, which keeps V8 from optimising undici's WebAssembly HTTP
 *   parser after the first response, a compilation Node waits for before the
 *   process ends: what a short script gains from that flag.
 * - `etcdkit-cli`: the `etcdkit put KEY VALUE` command (packages/cli), with
 *   cold-start-probe.js preloaded to report its times.
 * - `etcdctl`: `etcdctl put`, a Go binary, as a floor for a command line tool.
 *
 * The runner times each process from spawn to exit, and runs it under GNU
 * time when `/usr/bin/time` exists, for the peak RSS of its whole life: a
 * process can grow after its last JavaScript ran (V8 finishing background
 * compilation). Without GNU time the peak is the one at the `exit` event.
 * Ratios are paired: within a round, then the median over the rounds. A
 * program that fails in the first round, which warms the file cache, is left
 * out of the others (etcdkit-grpc, with a client that lacks the option).
 * A failure in a later round ends the workload.
 */
import { type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findEtcdctl } from '@etcdkit/harness';
import type { Skip } from './run-workload.js';
import { median, spread } from './stats.js';
import { markdown, ms, times } from './table.js';

/** What a measured process reports on descriptor 3; times are ms since it started. */
export interface ColdStartReport {
  /** When the measured script began: Node's own start-up before it. */
  start: number;
  imported?: number;
  firstCall?: number;
  closed?: number;
  /** When the `exit` event ran. */
  exitEvent: number;
  /** Peak RSS up to the `exit` event, kB. */
  maxRssKb: number;
}

export const COLD_START_PROGRAMS = [
  'etcdkit',
  'etcdkit-grpc',
  'etcdkit-liftoff-only',
  'etcd3',
  'etcdkit-cli',
  'etcdctl',
] as const;
export type ColdStartProgram = (typeof COLD_START_PROGRAMS)[number];

/** One process, from spawn to exit. */
export interface ColdStartRun {
  program: ColdStartProgram;
  /** From 1; round 0 warms the file cache and is not kept. */
  round: number;
  wallMs: number;
  /** Peak RSS over the whole life (GNU time), or at the `exit` event without it, MB. */
  peakRssMb: number;
  report: ColdStartReport | undefined;
}

export interface ColdStartSettings {
  rounds: number;
}

const CHILD = fileURLToPath(new URL('./cold-start-child.js', import.meta.url));
const PROBE = pathToFileURL(fileURLToPath(new URL('./cold-start-probe.js', import.meta.url))).href;
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const GNU_TIME = '/usr/bin/time';
const PROCESS_TIMEOUT_MS = 30_000;

function etcdctlPath(): string | undefined {
  try {
    return findEtcdctl();
  } catch {
    return undefined;
  }
}

function commandLine(
  program: ColdStartProgram,
  endpoint: string,
  key: string,
  etcdctl: string,
): [string, string[]] {
  switch (program) {
    case 'etcdkit':
    case 'etcdkit-grpc':
    case 'etcd3':
      return [process.execPath, [CHILD, program, endpoint, key]];
    case 'etcdkit-liftoff-only':
      return [process.execPath, ['--liftoff-only', CHILD, 'etcdkit', endpoint, key]];
    case 'etcdkit-cli':
      return [process.execPath, ['--import', PROBE, CLI, 'put', key, 'v', '--endpoints', endpoint]];
    case 'etcdctl':
      return [etcdctl, ['put', key, 'v', `--endpoints=${endpoint}`]];
  }
}

/** Runs one process to its end; rejects if it fails or hangs. */
async function runOnce(
  program: ColdStartProgram,
  round: number,
  endpoint: string,
  etcdctl: string,
  scratch: string,
): Promise<ColdStartRun> {
  const [bin, args] = commandLine(program, endpoint, `bench/cold-start/${program}`, etcdctl);
  const rssFile = join(scratch, `${program}-${round}.rss`);
  const timed = existsSync(GNU_TIME);
  const started = performance.now();
  // A process group of its own, so that a hung program under GNU time is killed with it.
  const options: SpawnOptions = { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true };
  const child = timed
    ? spawn(GNU_TIME, ['-f', '%M', '-o', rssFile, bin, ...args], options)
    : spawn(bin, args, options);
  let stderr = '';
  let reported = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
    reported += chunk.toString();
  });
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, PROCESS_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`${program} exited with ${code}: ${stderr.trim()}`);
  const report = reported ? (JSON.parse(reported) as ColdStartReport) : undefined;
  const peakKb = timed ? Number(readFileSync(rssFile, 'utf8').trim()) : (report?.maxRssKb ?? NaN);
  return { program, round, wallMs, peakRssMb: peakKb / 1024, report };
}

export interface ColdStart {
  runs: ColdStartRun[];
  /** Programs left out because their first run failed, and why. */
  skipped: Skip[];
}

/**
 * Runs `rounds` rounds of every program, after one round that warms the file
 * cache and leaves out the programs that fail in it.
 */
export async function runColdStart(
  endpoint: string,
  settings: ColdStartSettings,
): Promise<ColdStart> {
  const etcdctl = etcdctlPath();
  let programs = COLD_START_PROGRAMS.filter((p) => p !== 'etcdctl' || etcdctl !== undefined);
  const scratch = mkdtempSync(join(tmpdir(), 'etcdkit-cold-start-'));
  const out: ColdStart = { runs: [], skipped: [] };
  try {
    const failed = new Set<ColdStartProgram>();
    for (const program of programs) {
      try {
        await runOnce(program, 0, endpoint, etcdctl ?? '', scratch);
      } catch (err) {
        const reason = (err as Error).message.split('\n')[0]!;
        failed.add(program);
        out.skipped.push({ workload: 'cold-start', implementation: program, reason });
        console.error(`SKIPPED cold-start ${program}: ${reason}`);
      }
    }
    programs = programs.filter((p) => !failed.has(p));
    for (let round = 1; round <= settings.rounds; round++) {
      const order = programs.map((_, i) => programs[(i + round) % programs.length]!);
      for (const program of order) {
        out.runs.push(await runOnce(program, round, endpoint, etcdctl ?? '', scratch));
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return out;
}

/** Median over the runs of a part, NaN where the program does not report it. */
function part(runs: readonly ColdStartRun[], pick: (r: ColdStartReport) => number | undefined) {
  return median(
    runs.flatMap((r) => {
      const v = r.report ? pick(r.report) : undefined;
      return v === undefined ? [] : [v];
    }),
  );
}

/** Medians per program: the whole life and its parts. */
export function coldStartTable(runs: readonly ColdStartRun[]): string {
  const header = [
    'cold start',
    'wall ms',
    '±',
    'Node start',
    'import',
    'first put',
    'close',
    '→ exit event',
    '→ gone',
    'peak RSS MB',
  ];
  const rows = COLD_START_PROGRAMS.map((program) => {
    const own = runs.filter((r) => r.program === program);
    if (own.length === 0) return [program, '—', '', '—', '—', '—', '—', '—', '—', '—'];
    const wall = own.map((r) => r.wallMs);
    const gone = own.flatMap((r) => (r.report ? [r.wallMs - r.report.exitEvent] : []));
    return [
      program,
      ms(median(wall)),
      `${Math.round(spread(wall) * 100)}%`,
      ms(part(own, (r) => r.start)),
      ms(part(own, (r) => (r.imported === undefined ? undefined : r.imported - r.start))),
      ms(part(own, (r) => (r.firstCall === undefined ? undefined : r.firstCall - r.imported!))),
      ms(part(own, (r) => (r.closed === undefined ? undefined : r.closed - r.firstCall!))),
      ms(part(own, (r) => r.exitEvent - (r.closed ?? r.start))),
      ms(median(gone)),
      ms(median(own.map((r) => r.peakRssMb))),
    ];
  });
  return markdown(header, rows, 1);
}

/** Per-round ratios of `a` to `b`: the median and the range over the rounds. */
function pairedRatios(
  runs: readonly ColdStartRun[],
  a: ColdStartProgram,
  b: ColdStartProgram,
  pick: (r: ColdStartRun) => number,
): string[] {
  const ratios: number[] = [];
  for (const ra of runs) {
    if (ra.program !== a) continue;
    const rb = runs.find((r) => r.program === b && r.round === ra.round);
    if (rb) ratios.push(pick(ra) / pick(rb));
  }
  const finite = ratios.filter(Number.isFinite);
  if (finite.length === 0) return ['—', '—'];
  const range = `${times(Math.min(...finite))} – ${times(Math.max(...finite))}`;
  return [times(median(finite)), range];
}

/** etcdkit's library against etcd3's, and its command line tool against etcd3 and etcdctl. */
export function coldStartRatioTable(runs: readonly ColdStartRun[]): string {
  const header = ['cold start', 'wall', 'wall, range', 'peak RSS', 'peak RSS, range'];
  const pairs: [ColdStartProgram, ColdStartProgram][] = [
    ['etcdkit', 'etcd3'],
    ['etcdkit-liftoff-only', 'etcd3'],
    ['etcdkit-grpc', 'etcd3'],
    ['etcdkit-grpc', 'etcdkit'],
    ['etcdkit-cli', 'etcd3'],
    ['etcdkit-cli', 'etcdctl'],
  ];
  const rows = pairs.map(([a, b]) => [
    `${a} ÷ ${b}`,
    ...pairedRatios(runs, a, b, (r) => r.wallMs),
    ...pairedRatios(runs, a, b, (r) => r.peakRssMb),
  ]);
  return markdown(header, rows, 1);
}

/** One line for the table of before and now: the library's and the CLI's ratios to etcd3. */
export function coldStartVsEtcd3(runs: readonly ColdStartRun[]): string {
  const of = (a: ColdStartProgram) => {
    const [wall] = pairedRatios(runs, a, 'etcd3', (r) => r.wallMs);
    const [rss] = pairedRatios(runs, a, 'etcd3', (r) => r.peakRssMb);
    return `${wall} wall, ${rss} peak RSS`;
  };
  return `library ${of('etcdkit')}; CLI ${of('etcdkit-cli')}`;
}
