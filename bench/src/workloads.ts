/**
 * The workloads, each written once per implementation with the same keys,
 * value sizes and counts. To add one, append an entry to WORKLOADS: a name, how
 * many operations are in flight, an optional seed (run once by the runner,
 * never measured), and per implementation a `prepare` that sets up what it
 * needs and returns the operation. An implementation left out is shown as "—".
 */
import { get, lease, put, readdir, txnCas, watch } from './kv-workloads.js';
import {
  election,
  electionFailover,
  lock,
  lockContended,
  registrySync,
  registrySync5000,
  registryVisibility,
} from './recipe-workloads.js';
import type { Workload } from './workload-common.js';

export type { Clients, Operation, Prepare, PrepareContext, Workload } from './workload-common.js';

export const WORKLOADS: readonly Workload[] = [
  put('put-seq', 1),
  put('put-64', 64),
  get('get-seq', 1),
  get('get-64', 64),
  readdir,
  txnCas('txn-cas', 1),
  txnCas('txn-64', 64),
  lease,
  watch('watch-seq', 1),
  watch('watch-64', 64),
  lock,
  election,
  lockContended,
  registrySync,
  registrySync5000,
  registryVisibility,
  electionFailover,
];

export function workloadByName(name: string): Workload {
  const found = WORKLOADS.find((w) => w.name === name);
  if (!found) throw new Error(`unknown workload ${name}`);
  return found;
}
