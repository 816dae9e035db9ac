/**
 * What the runner and a measuring child say to each other over the IPC
 * channel. A child connects, prepares and warms up, then says `ready`. The
 * runner then hands out slices of measuring time, one child at a time: for
 * each it sends `prime` (a short burst that reopens idle connections, not
 * measured), reads the etcd server's CPU time, sends `go`, and reads it again
 * when the child answers `slice`. `stop` ends the child, which answers `final`.
 */

/**
 * The implementations compared side by side. etcdkit-grpc runs etcdkit's
 * code with a client that calls etcd over gRPC instead of the gateway.
 */
export const IMPLEMENTATIONS = ['etcdkit', 'etcdkit-grpc', 'etcd3', 'raw', 'raw-grpc'] as const;
export type Implementation = (typeof IMPLEMENTATIONS)[number];

/** Implementations that a workload writes code for; the others run another's code. */
export type WrittenImplementation = Exclude<Implementation, 'etcdkit-grpc'>;

/** Whose code an implementation runs. */
export function writtenAs(impl: Implementation): WrittenImplementation {
  return impl === 'etcdkit-grpc' ? 'etcdkit' : impl;
}

/** What a child is told to run; passed as JSON in its first argument. */
export interface ChildTask {
  workload: string;
  implementation: Implementation;
  endpoint: string;
  /** Most operations in the warm-up, and its time budget in ms. */
  warmupOps: number;
  warmupMs: number;
  /** Most operations in one measured slice, and its time budget in ms. */
  sliceOps: number;
  sliceMs: number;
  /** Connections of the raw loop's pool: etcdkit's default, so only the work per call differs. */
  rawConnections: number;
  /** Write a CPU profile of the measured slices to this file. */
  profile?: string;
}

/** One measured slice. Times are in the child's own clock. */
export interface SliceResult {
  /** Operations completed. */
  ops: number;
  /** Wall time, ms. */
  elapsedMs: number;
  /** User + system CPU of the child, µs. */
  cpuMicros: number;
  /** Median latency of the slice's operations, ms. */
  p50Ms: number;
}

/** What a child reports when it stops. */
export interface FinalResult {
  /** Latency percentiles over every measured operation of every slice, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Peak resident set size of the child over its whole life, bytes. */
  maxRssBytes: number;
  /** The workload's own timings (lock hand-offs), over the measured slices, if it records any. */
  handOffs?: Distribution | undefined;
}

/** Order statistics of a set of timings, ms. */
export interface Distribution {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export type ChildMessage =
  | { type: 'ready'; warmupOps: number }
  | { type: 'primed' }
  | { type: 'slice'; result: SliceResult }
  | { type: 'final'; result: FinalResult }
  /** `setUp`: the child failed before warming up, while connecting or preparing. */
  | { type: 'failed'; message: string; setUp?: boolean };

export type RunnerMessage = { type: 'prime' } | { type: 'go' } | { type: 'stop' };

/** Beside a profile, the child writes how many operations it covers. */
export function opsFile(profileFile: string): string {
  return profileFile.replace(/\.cpuprofile$/, '.ops.json');
}
