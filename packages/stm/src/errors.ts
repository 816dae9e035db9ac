/**
 * Outcomes of a transaction that did not commit. Both extend the client's
 * `EtcdError`; bad options reject with its `InvalidArgumentError`.
 */
import { EtcdError } from '@etcdkit/client';

/** Every attempt, up to `maxAttempts`, found that another writer had changed its keys. */
export class StmConflictError extends EtcdError {
  override readonly name = 'StmConflictError' as const;
  override readonly code = 'ETCDKIT_STM_CONFLICT' as const;
  /** How many times the function ran. */
  readonly attempts: number;

  constructor(message: string, attempts: number) {
    super(message);
    this.attempts = attempts;
  }
}

/**
 * The commit was sent and its outcome is unknown: it may or may not have been
 * applied. The function is not run again, since a second run could apply its
 * writes twice; read the keys to find out, or make the writes idempotent.
 */
export class StmIndeterminateError extends EtcdError {
  override readonly name = 'StmIndeterminateError' as const;
  override readonly code = 'ETCDKIT_STM_INDETERMINATE' as const;

  constructor(message: string, cause: unknown) {
    super(message, { cause, indeterminate: true });
  }
}
