/**
 * The figures the gateway work started from: an independent run of etcdkit
 * 0.1.0 (before the hand-off, hot-path and cold-start changes), etcd3 1.1.2
 * and a raw undici loop, interleaved, on etcd 3.4.23 with its data on disk,
 * 3 rounds, 128-byte values. They are printed beside this run's figures so a
 * change can be read against where it started; they are not measured here.
 */
import { type Final, markdown, pairedRatios, type Sample, timesWithSpread } from './table.js';

interface Reference {
  /** The workload of this bench that measures the same thing. */
  workload: string;
  what: string;
  /** etcdkit ÷ etcd3 ops/s then, and etcdkit ÷ raw loop. */
  vsEtcd3: number;
  vsRaw?: number;
}

export const REFERENCE_LABEL =
  'independent run before the change (etcdkit 0.1.0, etcd 3.4.23 on disk, 3 rounds, 128-byte values)';

const BEFORE: readonly Reference[] = [
  { workload: 'put-64', what: 'put, 64 in flight', vsEtcd3: 0.87, vsRaw: 0.69 },
  { workload: 'get-64', what: 'get, 64 in flight', vsEtcd3: 0.95, vsRaw: 0.79 },
  { workload: 'txn-64', what: 'txn CAS, 64 in flight', vsEtcd3: 0.73, vsRaw: 0.78 },
  { workload: 'put-seq', what: 'put, 1 in flight', vsEtcd3: 0.95, vsRaw: 0.84 },
  { workload: 'get-seq', what: 'get, 1 in flight', vsEtcd3: 0.86, vsRaw: 0.91 },
  { workload: 'lock-8', what: 'lock, 8 contenders (hand-offs/s)', vsEtcd3: 0.43 },
  { workload: 'election', what: 'election (campaign + resign)', vsEtcd3: 2.19 },
];

/** The p99 of a lock-8 hand-off then, etcdkit and etcd3, ms; and the cold start. */
const BEFORE_LOCK_P99 = { etcdkit: 73, etcd3: 13 };
const BEFORE_COLD_START = '1.16–1.33× etcd3 wall time, +27 MB peak RSS';

/** Before and now, for the workloads of this run that the reference has. */
export function referenceTable(
  samples: readonly Sample[],
  finals: readonly Final[],
  coldStartNow: string | undefined,
): string | undefined {
  const header = [
    'workload',
    'etcdkit ÷ etcd3 before',
    'etcdkit ÷ etcd3 now',
    'etcdkit ÷ raw before',
    'etcdkit ÷ raw now',
  ];
  const ops = (s: Sample) => s.opsPerSec;
  const rows: string[][] = [];
  for (const ref of BEFORE) {
    const own = samples.filter((s) => s.workload === ref.workload);
    if (!own.some((s) => s.implementation === 'etcdkit')) continue;
    rows.push([
      `${ref.what} (\`${ref.workload}\`)`,
      `${ref.vsEtcd3.toFixed(2)}×`,
      timesWithSpread(pairedRatios(own, 'etcdkit', 'etcd3', ops)),
      ref.vsRaw === undefined ? '—' : `${ref.vsRaw.toFixed(2)}×`,
      ref.vsRaw === undefined ? '—' : timesWithSpread(pairedRatios(own, 'etcdkit', 'raw', ops)),
    ]);
  }
  const kit = finals.find((f) => f.workload === 'lock-8' && f.implementation === 'etcdkit');
  const e3 = finals.find((f) => f.workload === 'lock-8' && f.implementation === 'etcd3');
  if (kit?.handOffs && e3?.handOffs) {
    rows.push([
      'lock-8 hand-off p99, etcdkit / etcd3',
      `${BEFORE_LOCK_P99.etcdkit} / ${BEFORE_LOCK_P99.etcd3} ms`,
      `${kit.handOffs.p99Ms.toFixed(1)} / ${e3.handOffs.p99Ms.toFixed(1)} ms`,
      '—',
      '—',
    ]);
  }
  if (coldStartNow)
    rows.push(['cold start: import, put, exit', BEFORE_COLD_START, coldStartNow, '—', '—']);
  return rows.length === 0 ? undefined : markdown(header, rows, 1);
}
