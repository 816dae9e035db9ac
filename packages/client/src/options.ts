/** Checks of caller input, shared by every method: typed errors before anything is sent. */
import { InvalidArgumentError } from './errors.js';

/** Rejects option names the method does not know, so a typo never goes unnoticed. */
export function checkOptions(
  method: string,
  options: object | undefined,
  allowed: ReadonlySet<string>,
): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`${method}: options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!allowed.has(name)) {
      const known = [...allowed].join(', ');
      throw new InvalidArgumentError(`${method}: unknown option "${name}" (known: ${known})`);
    }
  }
}

/** Option names every call takes. */
export const CALL_OPTIONS = ['signal', 'timeout'] as const;

export function optionSet(...names: string[]): ReadonlySet<string> {
  return new Set([...CALL_OPTIONS, ...names]);
}

/** A revision, lease ID or other int64 given as bigint or a safe integer number. */
export function toInt64(value: unknown, what: string, min = 0n): bigint {
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else
    throw new InvalidArgumentError(
      `${what} must be a bigint or a safe integer, got ${String(value)}`,
    );
  if (big < min || big > 0x7fff_ffff_ffff_ffffn) {
    throw new InvalidArgumentError(`${what} is out of range: ${big}`);
  }
  return big;
}

/** A lease ID as callers may give it: a bigint, a safe-integer number, or a decimal string (as etcd's JSON writes it). */
export type LeaseId = bigint | number | string;

/** Reads a lease ID given as bigint, safe integer or decimal string. */
export function toLeaseId(value: unknown, what: string, min = 0n): bigint {
  if (typeof value === 'string') {
    if (!/^\d{1,19}$/.test(value)) {
      throw new InvalidArgumentError(
        `${what} must be a bigint, a safe integer or a decimal string, got ${JSON.stringify(value)}`,
      );
    }
    return toInt64(BigInt(value), what, min);
  }
  return toInt64(value, what, min);
}

/** A non-negative integer count, such as a limit. */
export function toCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

export function toBool(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} must be a boolean`);
  return value;
}
