/**
 * The options of `stm()`, their defaults, and the one check that refuses bad
 * ones with an `InvalidArgumentError` naming the option.
 */
import { InvalidArgumentError, type Key } from '@etcdkit/client';

/**
 * - `serializable`: every read sees the store as of one revision (the first
 *   read's), and the commit fails if any key read or written changed since.
 * - `repeatable-read`: each read sees the newest value; the commit fails if any
 *   key read changed since it was read.
 * - `read-committed`: each read sees the newest value; the commit never fails.
 */
export type Isolation = 'serializable' | 'repeatable-read' | 'read-committed';

export const ISOLATIONS: readonly Isolation[] = [
  'serializable',
  'repeatable-read',
  'read-committed',
];

/** Serializable, as etcd's Go STM's default (SerializableSnapshot): the strongest, and retries make it cheap. */
export const DEFAULT_ISOLATION: Isolation = 'serializable';

/**
 * No limit, as in etcd's Go STM: each conflict means another transaction
 * committed, so the system always progresses. Bound one caller's wait with
 * `maxAttempts` or `signal`.
 */
export const DEFAULT_MAX_ATTEMPTS = Number.POSITIVE_INFINITY;

export interface StmOptions {
  /** How transactions may interleave; see `Isolation`. Default `'serializable'`. */
  isolation?: Isolation | undefined;
  /** Give up: rejects with `signal.reason` (see the README for an abort during the commit). */
  signal?: AbortSignal | undefined;
  /** Run the function at most this many times, then reject with StmConflictError. Default: no limit. */
  maxAttempts?: number | undefined;
  /** Keys read in one round trip before each run: the function will read them anyway. */
  prefetch?: readonly Key[] | undefined;
}

export interface CheckedOptions {
  isolation: Isolation;
  signal: AbortSignal | undefined;
  maxAttempts: number;
  prefetch: readonly Key[];
}

const NAMES = new Set(['isolation', 'signal', 'maxAttempts', 'prefetch']);

export function checkOptions(options: unknown): CheckedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`stm: options must be an object, got ${typeof options}`);
  }
  for (const name of Object.keys(options)) {
    if (!NAMES.has(name)) {
      throw new InvalidArgumentError(
        `stm: unknown option "${name}" (known: ${[...NAMES].join(', ')})`,
      );
    }
  }
  const o = options as StmOptions;
  const isolation = o.isolation ?? DEFAULT_ISOLATION;
  if (!ISOLATIONS.includes(isolation)) {
    throw new InvalidArgumentError(
      `stm: isolation must be one of ${ISOLATIONS.join(', ')}, got ${String(isolation)}`,
    );
  }
  const maxAttempts = o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (
    typeof maxAttempts !== 'number' ||
    !(maxAttempts >= 1) ||
    (maxAttempts !== DEFAULT_MAX_ATTEMPTS && !Number.isSafeInteger(maxAttempts))
  ) {
    throw new InvalidArgumentError(
      `stm: maxAttempts must be a whole number >= 1 (or Infinity), got ${String(maxAttempts)}`,
    );
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('stm: signal must be an AbortSignal');
  }
  const prefetch = o.prefetch ?? [];
  if (!Array.isArray(prefetch) || !prefetch.every(isKey)) {
    throw new InvalidArgumentError('stm: prefetch must be an array of keys (strings or bytes)');
  }
  return { isolation, signal: o.signal, maxAttempts, prefetch };
}

export function isKey(key: unknown): key is Key {
  return (typeof key === 'string' || key instanceof Uint8Array) && key.length > 0;
}
