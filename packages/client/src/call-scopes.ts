/**
 * Opens and ends the scopes of a transport's calls.
 *
 * How it works: opening a scope checks the call's options, registers its
 * deadline with the shared `Deadlines` and makes the scope a listener of the
 * caller's signal; ending it undoes both. A call that failed after its scope
 * was aborted rejects with the caller's reason, or with a TimeoutError that is
 * indeterminate when a write was in doubt.
 */
import { performance } from 'node:perf_hooks';
import { Aborted } from './aborted.js';
import { CallScope } from './call-scope.js';
import { Deadlines } from './deadlines.js';
import { EtcdError, InvalidArgumentError, TimeoutError } from './errors.js';
import type { CallOptions } from './transport-options.js';

export class CallScopes {
  readonly #deadlines = new Deadlines();

  /** A scope from a call's options; throws when they are invalid or the signal has aborted. */
  begin(options: CallOptions, defaultTimeout: number): CallScope {
    const { signal } = options;
    signal?.throwIfAborted();
    const timeout = options.timeout ?? defaultTimeout;
    if (!(Number.isFinite(timeout) && timeout >= 0)) {
      throw new InvalidArgumentError(`timeout must be a number of ms >= 0, got ${timeout}`);
    }
    return this.open(signal, timeout);
  }

  /** A scope that ends at `signal` or after `timeout` ms (0: no deadline). */
  open(signal: AbortSignal | undefined, timeout: number): CallScope {
    const scope = new CallScope(signal, timeout);
    if (timeout > 0) {
      scope.expiresAt = performance.now() + timeout;
      this.#deadlines.add(scope);
    }
    signal?.addEventListener('abort', scope, { once: true });
    return scope;
  }

  end(scope: CallScope): void {
    if (scope.timeout > 0) this.#deadlines.delete(scope);
    scope.callerSignal?.removeEventListener('abort', scope);
  }

  /**
   * Ends a call that failed with `err` and says what it rejects with: an abort
   * becomes the caller's reason or a TimeoutError.
   */
  failed(scope: CallScope, err: unknown): unknown {
    this.end(scope);
    if (!scope.aborted || (err instanceof EtcdError && !(err instanceof Aborted))) return err;
    if (scope.callerSignal?.aborted) return scope.callerSignal.reason;
    if (scope.timedOut) {
      const { inDoubt: indeterminate } = scope;
      return new TimeoutError(
        `no answer within ${scope.timeout} ms` +
          (indeterminate ? '; the write may or may not have been applied' : ''),
        { indeterminate },
      );
    }
    return err;
  }

  /** Stops the deadline timer, once no call can start any more. */
  clear(): void {
    this.#deadlines.clear();
  }
}
