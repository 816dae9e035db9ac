/** What a lock worker (worker.ts) and the tests that run it (workers.ts) exchange. */

export interface WorkerConfig {
  id: string;
  endpoints: string[];
  /** The lock's name. */
  lock: string;
  /** The etcd key written in each section, guarded by the lock. */
  resource: string;
  /** The etcd key holding the highest token written so far, zero-padded. */
  highest: string;
  /** URL of the fence checker. */
  checker: string;
  /** Concurrent lockers in this process. */
  lockers: number;
  /** TTL of the process's own session; without it the client's shared session is used. */
  ttl?: number;
  /** Time spent inside each section, in ms. */
  holdMs: number;
}

export interface SectionReport {
  type: 'section';
  worker: string;
  id: string;
  token: string;
  key: string;
  /** The checker accepted the enter / the exit. */
  entered: boolean;
  exited: boolean;
  /** The guarded write committed (false: a compare failed; null: no answer). */
  written: boolean | null;
  writeError?: string;
  /** lock.signal was aborted before the write was sent. */
  abortedBeforeWrite: boolean;
  /** The name of lock.signal's abort reason if the lock was lost during the section. */
  lost?: string;
  /** How the release went: 'released', an error name, or what the retry did. */
  release: string;
}

export interface ProblemReport {
  type: 'problem';
  worker: string;
  where: string;
  error: string;
}

export type WorkerMessage =
  | { type: 'ready'; worker: string; pid: number }
  | SectionReport
  | ProblemReport
  | { type: 'done'; worker: string; sections: number };

/** Tokens as fixed-width text, so that etcd's byte-wise value comparison orders them. */
export function padToken(token: bigint): string {
  return token.toString().padStart(20, '0');
}
