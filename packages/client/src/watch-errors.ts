/** Errors that end a watcher: compaction, cancellation by etcd, and a store that went back in time. */
import { EtcdError, type EtcdErrorOptions } from './errors.js';

/** The revision a watcher needed is compacted; events may have been missed. */
export class WatchCompactedError extends EtcdError {
  override readonly name = 'WatchCompactedError' as const;
  override readonly code = 'ETCDKIT_WATCH_COMPACTED' as const;
  /** The compaction revision etcd reported: the oldest revision still available. */
  readonly compactRevision: bigint;

  constructor(message: string, compactRevision: bigint, options: EtcdErrorOptions = {}) {
    super(message, options);
    this.compactRevision = compactRevision;
  }
}

/** etcd cancelled a watch for a reason other than compaction. */
export class WatchCanceledError extends EtcdError {
  override readonly name = 'WatchCanceledError' as const;
  override readonly code = 'ETCDKIT_WATCH_CANCELED' as const;
}

/** After a reconnect the store's revision was lower than already seen: the data was replaced. */
export class RevisionRegressedError extends EtcdError {
  override readonly name = 'RevisionRegressedError' as const;
  override readonly code = 'ETCDKIT_REVISION_REGRESSED' as const;
}

/** The error for a store found at `revision`, below the `seen` one. */
export function regressed(revision: bigint, seen: bigint): RevisionRegressedError {
  return new RevisionRegressedError(
    `etcd is at revision ${revision} but revision ${seen} was already seen: ` +
      'the cluster was replaced or restored from an older backup',
  );
}
