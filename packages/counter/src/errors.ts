/**
 * Outcomes of counter calls that did not go through. Both extend the client's
 * `EtcdError`; bad input rejects with its `InvalidArgumentError`.
 */
import { EtcdError } from '@etcdkit/client';

/** The key holds something other than a decimal integer, so it is not a counter. */
export class NotACounterError extends EtcdError {
  override readonly name = 'NotACounterError' as const;
  override readonly code = 'ETCDKIT_NOT_A_COUNTER' as const;
  /** The counter's key. */
  readonly key: string;
  /** The stored text (its first 64 characters). */
  readonly text: string;

  constructor(key: string, text: string) {
    super(`key ${JSON.stringify(key)} holds ${JSON.stringify(text)}, not a decimal integer`);
    this.key = key;
    this.text = text;
  }
}

/**
 * A write whose outcome is unknown: it may or may not have been applied. It is
 * not retried, since a retried add could count twice.
 */
export class CounterIndeterminateError extends EtcdError {
  override readonly name = 'CounterIndeterminateError' as const;
  override readonly code = 'ETCDKIT_COUNTER_INDETERMINATE' as const;

  constructor(message: string, cause: unknown) {
    super(message, { cause, indeterminate: true });
  }
}
