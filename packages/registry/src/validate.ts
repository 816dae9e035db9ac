/**
 * Checks of caller input. Everything a registration will write is checked
 * here, before a lease is granted or a key written, and refused with an
 * `InvalidRegistrationError` that names the field.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError, type JsonValue, jsonProblem } from '@etcdkit/client';
import { InvalidRegistrationError, type RegistrationField } from './errors.js';

/**
 * Service names and instance IDs: 1 to 128 letters, digits, `.`, `_`, `-`,
 * `:` or `@`, starting with a letter, digit or `_`. No `/`: it separates the
 * parts of a key.
 */
export const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127}$/;

/** Zones: 1 to 128 printable ASCII characters. */
const ZONE_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** One DNS label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export type InstanceStatus = 'up' | 'draining';
export const STATUSES: readonly InstanceStatus[] = ['up', 'draining'];

function refuse(field: RegistrationField, message: string, cause?: unknown): never {
  throw new InvalidRegistrationError(field, message, cause === undefined ? {} : { cause });
}

export function checkName(value: unknown, field: 'service' | 'id'): string {
  if (typeof value !== 'string') refuse(field, `${field} must be a string, got ${typeof value}`);
  if (value.includes('/')) {
    refuse(field, `${field} ${JSON.stringify(value)} contains "/", which separates key parts`);
  }
  if (!NAME_PATTERN.test(value)) {
    refuse(
      field,
      `${field} ${JSON.stringify(value)} must be 1 to 128 letters, digits, ".", "_", "-", ":" ` +
        'or "@", starting with a letter, digit or "_"',
    );
  }
  return value;
}

/** A host name (RFC 1123), an IPv4 address or an IPv6 address without brackets. */
export function checkAddress(value: unknown): string {
  if (typeof value !== 'string') refuse('address', `address must be a string, got ${typeof value}`);
  if (isIPv4(value) || isIPv6(value)) return value;
  if (value.startsWith('[')) {
    refuse('address', `address ${JSON.stringify(value)}: give an IPv6 address without brackets`);
  }
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  const labels = name.split('.');
  const hostname =
    name.length > 0 && name.length <= 253 && labels.every((label) => LABEL.test(label));
  // "10.0.0.300" is not an address, and not a name either.
  if (!hostname || /^[0-9.]+$/.test(name)) {
    refuse(
      'address',
      `address ${JSON.stringify(value)} is neither a host name nor an IPv4 or IPv6 address`,
    );
  }
  return value;
}

export function checkPort(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535) {
    refuse('port', `port must be an integer from 1 to 65535, got ${String(value)}`);
  }
  return value;
}

export function checkWeight(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    refuse('weight', `weight must be a positive finite number, got ${String(value)}`);
  }
  return value;
}

export function checkZone(value: unknown): string {
  if (typeof value !== 'string' || !ZONE_PATTERN.test(value)) {
    refuse(
      'zone',
      `zone must be 1 to 128 printable ASCII characters, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function checkStatus(value: unknown): InstanceStatus {
  if (!STATUSES.includes(value as InstanceStatus)) {
    refuse('status', `status must be "up" or "draining", got ${JSON.stringify(value)}`);
  }
  return value as InstanceStatus;
}

/**
 * Metadata is a plain object whose values JSON represents exactly: no
 * functions, symbols, bigints, `undefined`, non-finite numbers, class
 * instances (a Date or a Map would change on the way) or cycles. Returns a
 * deep copy, so later changes by the caller do not leak into the registration.
 */
export function checkMetadata(value: unknown): Record<string, JsonValue> {
  if (!isPlainObject(value)) {
    refuse('metadata', `metadata must be a plain object, got ${describe(value)}`);
  }
  const problem = jsonProblem(value, 'metadata');
  if (problem !== undefined) refuse('metadata', `${problem}, which JSON does not carry exactly`);
  return JSON.parse(JSON.stringify(value)) as Record<string, JsonValue>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)
      ?.constructor?.name;
    return ctor ? `a ${ctor}` : 'an object';
  }
  return `a ${typeof value}`;
}

/** A lease TTL in whole seconds, at least 1. */
export function checkTtl(value: unknown, what = 'ttl'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      `${what} must be a whole number of seconds >= 1, got ${String(value)}`,
    );
  }
  return value;
}

/** A key prefix without its trailing slashes: '/services/' becomes '/services'. */
export function checkPrefix(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`prefix must be a non-empty string, got ${String(value)}`);
  }
  return value.replace(/\/+$/, '');
}

/** Rejects option names the method does not know, so a typo never goes unnoticed. */
export function checkOptions(method: string, options: unknown, allowed: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`${method}: options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) {
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: ${allowed.join(', ')})`,
      );
    }
  }
}

/** A duration in ms: a finite number >= 0. */
export function checkDuration(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a number of ms >= 0, got ${String(value)}`);
  }
  return value;
}
