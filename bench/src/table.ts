/**
 * The tables: absolute figures per workload and implementation, etcdkit's
 * ratios against etcd3 and against the raw loop, and the same for the gRPC
 * implementations. Printed as Markdown, so the output pastes into RESULTS.md
 * as is.
 *
 * The machine's speed drifts from second to second, and a round of slices
 * (one per implementation, back to back) shares that drift. So a ratio is the
 * median over the rounds of the ratio within each round, not the ratio of two
 * medians taken at different times.
 */
import { type Distribution, IMPLEMENTATIONS, type Implementation } from './protocol.js';
import { median, spread } from './stats.js';

/** One measured slice, with the server CPU the runner measured around it. */
export interface Sample {
  workload: string;
  implementation: Implementation;
  /** The round the slice belongs to, from 1. */
  round: number;
  opsPerSec: number;
  p50Ms: number;
  clientCpuMicrosPerOp: number;
  serverCpuMicrosPerOp: number;
  /** Share of the machine used by processes other than etcd and the bench during the slice. */
  otherLoad: number;
}

/** What a child reported when it stopped: figures over all its slices. */
export interface Final {
  workload: string;
  implementation: Implementation;
  p50Ms: number;
  p99Ms: number;
  maxRssMb: number;
  /** Lock hand-off times over the measured slices, for workloads that record them. */
  handOffs?: Distribution | undefined;
}

export interface Summary {
  /** Medians over the slices. */
  opsPerSec: number;
  clientCpuMicrosPerOp: number;
  serverCpuMicrosPerOp: number;
  /** (max − min) / median of ops/s over the slices. */
  spread: number;
  /** Over every operation of every slice. */
  p50Ms: number;
  p99Ms: number;
  maxRssMb: number;
}

export interface WorkloadRow {
  name: string;
  concurrency: number;
  byImplementation: Partial<Record<Implementation, Summary>>;
  samples: readonly Sample[];
}

export function summarize(samples: readonly Sample[], final: Final | undefined): Summary {
  const of = (pick: (s: Sample) => number) => median(samples.map(pick));
  return {
    opsPerSec: of((s) => s.opsPerSec),
    clientCpuMicrosPerOp: of((s) => s.clientCpuMicrosPerOp),
    serverCpuMicrosPerOp: of((s) => s.serverCpuMicrosPerOp),
    spread: spread(samples.map((s) => s.opsPerSec)),
    p50Ms: final?.p50Ms ?? Number.NaN,
    p99Ms: final?.p99Ms ?? Number.NaN,
    maxRssMb: final?.maxRssMb ?? Number.NaN,
  };
}

/** `pick(a) / pick(b)` within each round that has both. */
export function pairedRatios(
  samples: readonly Sample[],
  a: Implementation,
  b: Implementation,
  pick: (s: Sample) => number,
): number[] {
  const ratios: number[] = [];
  for (const sa of samples) {
    if (sa.implementation !== a) continue;
    const sb = samples.find((s) => s.implementation === b && s.round === sa.round);
    if (sb) ratios.push(pick(sa) / pick(sb));
  }
  return ratios.filter(Number.isFinite);
}

/** A paired ratio and the spread of its rounds, (max − min) / median: `0.87× ±9%`. */
export function timesWithSpread(ratios: readonly number[]): string {
  if (ratios.length === 0) return '—';
  const m = median(ratios);
  return ratios.length < 2 ? times(m) : `${times(m)} ±${Math.round(spread(ratios) * 100)}%`;
}

export function markdown(header: string[], rows: string[][], rightFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const cell = (c: string, i: number) =>
    i >= rightFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!);
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = widths.map((w, i) => (i >= rightFrom ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2)));
  return [line(header), `|${rule.join('|')}|`, ...rows.map(line)].join('\n');
}

const whole = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
export const ms = (n: number) => (!Number.isFinite(n) ? '—' : n < 10 ? n.toFixed(2) : n.toFixed(1));
export const times = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');

/** Absolute figures: one line per workload and implementation of the run. */
export function figuresTable(
  rows: readonly WorkloadRow[],
  implementations: readonly Implementation[] = IMPLEMENTATIONS,
): string {
  const header = [
    'workload',
    'impl',
    'ops/s',
    '±',
    'p50 ms',
    'p99 ms',
    'client CPU µs/op',
    'etcd CPU µs/op',
    'peak RSS MB',
  ];
  const out: string[][] = [];
  for (const row of rows) {
    for (const impl of IMPLEMENTATIONS.filter((i) => implementations.includes(i))) {
      const s = row.byImplementation[impl];
      const label = `${row.name} (${row.concurrency} in flight)`;
      if (!s) {
        out.push([label, impl, '—', '', '—', '—', '—', '—', '—']);
        continue;
      }
      out.push([
        label,
        impl,
        whole(s.opsPerSec),
        `${Math.round(s.spread * 100)}%`,
        ms(s.p50Ms),
        ms(s.p99Ms),
        whole(s.clientCpuMicrosPerOp),
        whole(s.serverCpuMicrosPerOp),
        whole(s.maxRssMb),
      ]);
    }
  }
  return markdown(header, out, 2);
}

/**
 * etcdkit against etcd3 and against the raw loop. For ops/s above 1 is better;
 * for latency, CPU and memory below 1 is better. p99 and RSS are ratios of the
 * whole-run figures; the others are paired by round, with the spread of the
 * rounds' ratios.
 */
export function ratioTable(rows: readonly WorkloadRow[]): string {
  const header = [
    'workload',
    'ops/s ÷ etcd3',
    'p50 ÷ etcd3',
    'p99 ÷ etcd3',
    'client CPU ÷ etcd3',
    'etcd CPU ÷ etcd3',
    'RSS ÷ etcd3',
    'ops/s ÷ raw',
    'p50 ÷ raw',
    'client CPU ÷ raw',
  ];
  const out = rows.map((row) => {
    const paired = (b: Implementation, pick: (s: Sample) => number) =>
      timesWithSpread(pairedRatios(row.samples, 'etcdkit', b, pick));
    const whole = (b: Implementation, pick: (s: Summary) => number) => {
      const k = row.byImplementation.etcdkit;
      const o = row.byImplementation[b];
      return times(k && o ? pick(k) / pick(o) : Number.NaN);
    };
    return [
      row.name,
      paired('etcd3', (s) => s.opsPerSec),
      paired('etcd3', (s) => s.p50Ms),
      whole('etcd3', (s) => s.p99Ms),
      paired('etcd3', (s) => s.clientCpuMicrosPerOp),
      paired('etcd3', (s) => s.serverCpuMicrosPerOp),
      whole('etcd3', (s) => s.maxRssMb),
      paired('raw', (s) => s.opsPerSec),
      paired('raw', (s) => s.p50Ms),
      paired('raw', (s) => s.clientCpuMicrosPerOp),
    ];
  });
  return markdown(header, out, 1);
}

/** The pairs of the gRPC table: etcdkit over gRPC against its limit and against etcd3, and that limit against etcd3. */
const GRPC_PAIRS: readonly (readonly [Implementation, Implementation])[] = [
  ['etcdkit-grpc', 'raw-grpc'],
  ['etcdkit-grpc', 'etcd3'],
  ['raw-grpc', 'etcd3'],
];

/**
 * The gRPC implementations: per pair, ops/s (above 1 is better) and etcd CPU
 * per operation (below 1 is better), paired by round, with the spread of the
 * rounds' ratios. Undefined when no workload ran a pair.
 */
export function grpcRatioTable(rows: readonly WorkloadRow[]): string | undefined {
  const header = [
    'workload',
    ...GRPC_PAIRS.flatMap(([a, b]) => [`ops/s ${a} ÷ ${b}`, `etcd CPU ${a} ÷ ${b}`]),
  ];
  const ran = (row: WorkloadRow) =>
    GRPC_PAIRS.some(([a, b]) => row.byImplementation[a] && row.byImplementation[b]);
  const out = rows
    .filter(ran)
    .map((row) => [
      row.name,
      ...GRPC_PAIRS.flatMap(([a, b]) => [
        timesWithSpread(pairedRatios(row.samples, a, b, (s) => s.opsPerSec)),
        timesWithSpread(pairedRatios(row.samples, a, b, (s) => s.serverCpuMicrosPerOp)),
      ]),
    ]);
  return out.length === 0 ? undefined : markdown(header, out, 1);
}

/** Lock hand-offs: from one holder's release call to the next holder's acquire, per implementation. */
export function handOffTable(finals: readonly Final[]): string | undefined {
  const rows = finals.filter((f) => f.handOffs);
  if (rows.length === 0) return undefined;
  const header = ['workload', 'impl', 'hand-offs', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
  const out = rows.map((f) => {
    const d = f.handOffs!;
    return [
      f.workload,
      f.implementation,
      whole(d.count),
      ms(d.p50Ms),
      ms(d.p90Ms),
      ms(d.p99Ms),
      ms(d.maxMs),
    ];
  });
  return markdown(header, out, 2);
}
