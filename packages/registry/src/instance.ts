/**
 * The wire contract: where an instance is stored and what its value holds.
 *
 * Key: `<prefix>/<service>/<id>`, attached to the registration's lease.
 * Value: UTF-8 JSON, written and read by this file alone, whatever codec the
 * client uses:
 *
 *   { "v": 1, "id": "api-1", "address": "10.0.0.5", "port": 8080,
 *     "metadata": { "version": "1.4.2" }, "weight": 1, "zone": "eu-west-1a",
 *     "status": "up", "registeredAt": "2025-01-01T12:00:00.000Z",
 *     "healthy": false, "healthSince": "2025-01-01T12:05:00.000Z",
 *     "healthReason": "timed out after 5000 ms" }
 *
 * `v` is the format version. Readers ignore fields they do not know, so a new
 * optional field keeps `v` at 1; a change that would mislead a version 1
 * reader increments `v`, and readers skip values of a version they do not
 * know (reporting them as malformed) rather than guess.
 *
 * The health fields are written only by instances with a health check; a
 * value without them is healthy. A reader older than them ignores them and
 * may pick an unhealthy instance, as it did before health checks existed:
 * that keeps `v` at 1, since a new `v` would hide every checked instance.
 */
import { isIPv6 } from 'node:net';
import type { JsonValue, KeyValue } from '@etcdkit/client';
import { MalformedInstanceError } from './errors.js';
import type { HealthState } from './health-check.js';
import {
  checkAddress,
  checkMetadata,
  checkName,
  checkPort,
  checkWeight,
  checkZone,
  type InstanceStatus,
  STATUSES,
} from './validate.js';

/** Version of the value format written by this package. */
export const WIRE_VERSION = 1;
/** Weight of an instance registered without one. */
export const DEFAULT_WEIGHT = 1;

/** What an instance says about itself when it registers. */
export interface InstanceDescription {
  /** Unique within the service. Default: a random UUID. */
  id?: string | undefined;
  /** Host name, IPv4 or IPv6 address (without brackets) where the instance listens. */
  address: string;
  /** TCP port, 1 to 65535. */
  port: number;
  /** Free-form facts for consumers (version, protocol, ...). A plain JSON object. Default {}. */
  metadata?: Record<string, JsonValue> | undefined;
  /** Relative share of traffic for the weighted picker. A positive number. Default 1. */
  weight?: number | undefined;
  /** Locality, e.g. an availability zone. Default: none. */
  zone?: string | undefined;
}

/** A registered instance, as a consumer sees it. Frozen: instances are shared. */
export interface ServiceInstance {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** `address:port`, with brackets around an IPv6 address: ready for a URL. */
  readonly host: string;
  readonly metadata: Readonly<Record<string, JsonValue>>;
  readonly weight: number;
  readonly zone: string | undefined;
  /** `up`, or `draining` while it shuts down: pickers choose only `up` instances. */
  readonly status: InstanceStatus;
  /** When the instance first registered (kept across re-registrations). */
  readonly registeredAt: Date;
  /** False while the instance's own health check fails; always true without a check. */
  readonly healthy: boolean;
  /** When the instance last became healthy or unhealthy; undefined without a check. */
  readonly healthSince: Date | undefined;
  /** Why its check failed, while unhealthy. */
  readonly healthReason: string | undefined;
  /** The lease the key is attached to. */
  readonly lease: bigint;
  /** The store revision of the key's last change. */
  readonly modRevision: bigint;
}

/** The fields of a value, in the order they are written. */
export interface InstanceRecord {
  id: string;
  address: string;
  port: number;
  metadata: Record<string, JsonValue>;
  weight: number;
  zone: string | undefined;
  status: InstanceStatus;
  registeredAt: string;
  /** Written by instances with a health check only. */
  health: HealthState | undefined;
}

/** Checks a description and turns it into the record to store. */
export function recordFor(id: string, description: InstanceDescription): InstanceRecord {
  return {
    id: checkName(id, 'id'),
    address: checkAddress(description.address),
    port: checkPort(description.port),
    metadata: description.metadata === undefined ? {} : checkMetadata(description.metadata),
    weight: description.weight === undefined ? DEFAULT_WEIGHT : checkWeight(description.weight),
    zone: description.zone === undefined ? undefined : checkZone(description.zone),
    status: 'up',
    registeredAt: new Date().toISOString(),
    health: undefined,
  };
}

/** The directory holding every instance of `service`, with its trailing slash. */
export function serviceDir(prefix: string, service: string): string {
  return `${prefix}/${service}/`;
}

export function encodeRecord(record: InstanceRecord): Uint8Array {
  const value: Record<string, JsonValue> = {
    v: WIRE_VERSION,
    id: record.id,
    address: record.address,
    port: record.port,
    metadata: record.metadata,
    weight: record.weight,
  };
  if (record.zone !== undefined) value.zone = record.zone;
  value.status = record.status;
  value.registeredAt = record.registeredAt;
  if (record.health) {
    value.healthy = record.health.healthy;
    value.healthSince = record.health.since;
    if (record.health.reason !== undefined) value.healthReason = record.health.reason;
  }
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Reads a stored pair under `dir` (a service's directory); throws MalformedInstanceError. */
export function decodeInstance(service: string, dir: string, kv: KeyValue): ServiceInstance {
  const key = kv.key;
  const bad = (message: string, cause?: unknown): never => {
    throw new MalformedInstanceError(key, message, cause === undefined ? {} : { cause });
  };
  const id = key.slice(dir.length);
  if (!key.startsWith(dir) || id.length === 0 || id.includes('/')) {
    bad(`not a key of the form ${dir}<id>`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(kv.valueBytes).toString('utf8'));
  } catch (err) {
    bad('the value is not JSON', err);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not a JSON object');
  const value = raw as Record<string, unknown>;
  if (value.v !== WIRE_VERSION) bad(`unknown format version ${JSON.stringify(value.v)}`);
  if (value.id !== id) bad(`id ${JSON.stringify(value.id)} does not match the key`);
  const field = <T>(name: string, check: (v: unknown) => T): T => {
    try {
      return check(value[name]);
    } catch (err) {
      return bad(`field "${name}": ${(err as Error).message}`, err);
    }
  };
  const address = field('address', checkAddress);
  const port = field('port', checkPort);
  const metadata = value.metadata === undefined ? {} : field('metadata', checkMetadata);
  const weight = value.weight === undefined ? DEFAULT_WEIGHT : field('weight', checkWeight);
  const zone =
    value.zone === undefined || value.zone === null ? undefined : field('zone', checkZone);
  if (!STATUSES.includes(value.status as InstanceStatus)) {
    bad(`unknown status ${JSON.stringify(value.status)}`);
  }
  const registeredAt = new Date(typeof value.registeredAt === 'string' ? value.registeredAt : NaN);
  if (Number.isNaN(registeredAt.getTime())) bad('field "registeredAt" is not an ISO 8601 time');
  if (value.healthy !== undefined && typeof value.healthy !== 'boolean') {
    bad('field "healthy" is not true or false');
  }
  const healthSince =
    typeof value.healthSince === 'string' ? new Date(value.healthSince) : undefined;
  if (healthSince && Number.isNaN(healthSince.getTime())) {
    bad('field "healthSince" is not an ISO 8601 time');
  }
  return Object.freeze({
    service,
    id,
    address,
    port,
    host: isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`,
    metadata: deepFreeze(metadata),
    weight,
    zone,
    status: value.status as InstanceStatus,
    registeredAt,
    healthy: value.healthy !== false,
    healthSince,
    healthReason: typeof value.healthReason === 'string' ? value.healthReason : undefined,
    lease: kv.lease,
    modRevision: kv.modRevision,
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
