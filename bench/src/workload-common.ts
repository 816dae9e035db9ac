/**
 * What a workload is, and what the definitions of workloads share: keys under
 * one root, printable values of a given size, a seeding helper. The workloads
 * themselves are in kv-workloads.ts and recipe-workloads.ts, their list in
 * workloads.ts.
 */
import type { Etcd } from '@etcdkit/client';
import type { Etcd3 } from 'etcd3';
import type { Implementation, WrittenImplementation } from './protocol.js';
import type { RawGateway } from './raw.js';
import type { RawGrpc } from './raw-grpc.js';

/** The client each implementation's code is given. */
export interface Clients {
  etcdkit: Etcd<string>;
  etcd3: Etcd3;
  raw: RawGateway;
  'raw-grpc': RawGrpc;
}

/** One operation; `i` counts from 0 over warm-up and measured phase together. */
export type Operation = (i: number) => Promise<void>;

export interface PrepareContext {
  /** Which implementation runs, for workloads whose state must not be shared. */
  implementation: Implementation;
  /**
   * Records one hand-off, from `from` to `to` (`performance.now()`); kept
   * when both fall within a measured slice.
   */
  handOff(from: number, to: number): void;
}

export type Prepare<C> = (client: C, ctx: PrepareContext) => Promise<Operation>;

export interface Workload {
  /** Short name, used on the command line. */
  name: string;
  /** What one operation is, for the table. */
  title: string;
  /** Operations in flight: 1 measures latency, more measure throughput. */
  concurrency: number;
  /** Warm-up operations, when fewer than the runner's default do (heavy operations). */
  warmupOps?: number;
  /** Writes the data the workload reads. Runs in the runner before the first child. */
  seed?: (etcd: Etcd<string>) => Promise<void>;
  /** Per implementation; etcdkit-grpc runs etcdkit's (protocol.ts, writtenAs). */
  prepare: { [K in WrittenImplementation]?: Prepare<Clients[K]> };
}

export const LEASE_TTL = 60;
export const ROOT = 'bench/';

/** Values are printable ASCII, so every implementation sends the same bytes. */
export function textValue(size: number): string {
  let out = '';
  for (let i = 0; i < size; i++) out += String.fromCharCode(97 + (i % 26));
  return out;
}

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export function keyOf(space: string, n: number): string {
  return `${ROOT}${space}/${String(n).padStart(4, '0')}`;
}

export async function seedKeys(etcd: Etcd<string>, space: string, count: number, bytes: number) {
  const value = textValue(bytes);
  for (let i = 0; i < count; i += 64) {
    const batch = [];
    for (let n = i; n < Math.min(count, i + 64); n++) batch.push(etcd.set(keyOf(space, n), value));
    await Promise.all(batch);
  }
}
