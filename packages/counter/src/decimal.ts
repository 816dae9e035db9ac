/**
 * The counter's stored form: a decimal integer as ASCII text, an optional
 * minus sign and digits without leading zeros, so any etcdctl or Go client can
 * read and write it.
 */
import { InvalidArgumentError, type KeyValue } from '@etcdkit/client';
import { NotACounterError } from './errors.js';

const DECIMAL = /^-?(0|[1-9][0-9]*)$/;

/** The counter's value in a stored pair: 0n when the key does not exist. */
export function parseCounter(key: string, kv: KeyValue<unknown> | undefined): bigint {
  if (!kv) return 0n;
  const text = Buffer.from(kv.valueBytes).toString('utf8');
  if (!DECIMAL.test(text) || text === '-0') throw new NotACounterError(key, text.slice(0, 64));
  return BigInt(text);
}

/** A bigint, or a number that is a safe integer, as a bigint. */
export function toBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new InvalidArgumentError(
    `${what} must be a bigint or a safe integer number, got ${typeof value === 'number' ? value : typeof value}`,
  );
}
