import { EtcdError } from '@etcdkit/client';

/** `tryLock` found the lock held by someone else. */
export class LockTakenError extends EtcdError {
  override readonly name = 'LockTakenError' as const;
  override readonly code = 'ETCDKIT_LOCK_TAKEN' as const;
  /** The holder's key, when known. */
  readonly holder: string | undefined;
  /** The holder's fencing token (its key's create revision), when known. */
  readonly holderToken: bigint | undefined;

  constructor(message: string, holder?: string, holderToken?: bigint) {
    super(message);
    this.holder = holder;
    this.holderToken = holderToken;
  }
}

/** A release of a lock that is not held (never acquired, or lost with its session). */
export class LockNotHeldError extends EtcdError {
  override readonly name = 'LockNotHeldError' as const;
  override readonly code = 'ETCDKIT_LOCK_NOT_HELD' as const;
}

/** `lock({ timeout })` waited that long without getting the lock; its place in the queue was given up. */
export class LockTimeoutError extends EtcdError {
  override readonly name = 'LockTimeoutError' as const;
  override readonly code = 'ETCDKIT_LOCK_TIMEOUT' as const;
}

/** A held lock was lost: its session's lease ended, or its key was deleted from outside. */
export class LockLostError extends EtcdError {
  override readonly name = 'LockLostError' as const;
  override readonly code = 'ETCDKIT_LOCK_LOST' as const;
}

/**
 * A semaphore contender's limit differs from the one the contenders already
 * queued agree on. Every process must construct the semaphore with the same
 * limit; nothing was written.
 */
export class SemaphoreLimitError extends EtcdError {
  override readonly name = 'SemaphoreLimitError' as const;
  override readonly code = 'ETCDKIT_SEMAPHORE_LIMIT' as const;
  /** The limit this contender was made with. */
  readonly limit: number;
  /** The limit of the contenders already queued. */
  readonly queuedLimit: number;
  /** The queued key whose limit was compared (the oldest). */
  readonly holder: string;

  constructor(limit: number, queuedLimit: number, holder: string) {
    super(
      `semaphore limit ${limit} differs from the limit ${queuedLimit} of the contenders ` +
        `already queued (${holder}): every process must use the same limit`,
    );
    this.limit = limit;
    this.queuedLimit = queuedLimit;
    this.holder = holder;
  }
}
