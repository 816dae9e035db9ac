/**
 * The gateway's JSON arrives as `unknown` and is narrowed here, in one place.
 * proto3 JSON omits zero and false fields and sends int64 as strings, so every
 * reader takes a default and int64 fields become bigint without passing
 * through Number.
 */
import { ProtocolError } from './errors.js';

export type Json = Record<string, unknown>;

export function asObject(value: unknown, what: string): Json {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
  throw new ProtocolError(`expected an object for ${what}, got ${JSON.stringify(value)}`);
}

export function optObject(value: unknown, what: string): Json | undefined {
  return value === undefined || value === null ? undefined : asObject(value, what);
}

export function asArray(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value;
  throw new ProtocolError(`expected an array for ${what}`);
}

/**
 * An int64 field: a decimal string in the gateway's JSON (or a number for
 * small values), a bigint from the gRPC transport; absent means 0.
 */
export function int64(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new ProtocolError(`expected an integer for ${what}, got ${JSON.stringify(value)}`);
}

/** An int64 field that is a count or a TTL: small enough for a number. */
export function smallInt(value: unknown, what: string): number {
  const big = int64(value, what);
  const n = Number(big);
  if (!Number.isSafeInteger(n)) throw new ProtocolError(`${what} is out of range: ${big}`);
  return n;
}

export function bool(value: unknown): boolean {
  return value === true;
}

export function str(value: unknown, what: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  throw new ProtocolError(`expected a string for ${what}`);
}

/**
 * A bytes field: base64 in the gateway's JSON; the gRPC transport hands its
 * bytes over as they came, sparing a base64 round trip.
 */
export function bytesField(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value === undefined || value === null) return EMPTY;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  throw new ProtocolError(`expected bytes for ${what}`);
}

const EMPTY = new Uint8Array(0);

/** The revision from a response header. */
export function headerRevision(body: Json): bigint {
  const header = optObject(body.header, 'header');
  return header ? int64(header.revision, 'header.revision') : 0n;
}
