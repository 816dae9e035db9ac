/**
 * Lease calls: grant, revoke, one keepalive round, time-to-live and the list
 * of leases. Lease IDs are bigint: they exceed 2^53.
 */
import { randomBytes } from 'node:crypto';
import { utf8 } from './bytes.js';
import type { Context } from './context.js';
import {
  EtcdError,
  fromGatewayError,
  InvalidArgumentError,
  LeaseExistsError,
  LeaseNotFoundError,
  ServerError,
} from './errors.js';
import { checkOptions, type LeaseId, optionSet, toLeaseId } from './options.js';
import type { CallOptions } from './transport.js';
import {
  asArray,
  asObject,
  bytesField,
  headerRevision,
  int64,
  optObject,
  smallInt,
  str,
} from './wire.js';

export interface Lease {
  id: bigint;
  /** Time to live in seconds, as granted or renewed by etcd. */
  ttl: number;
}

export interface LeaseInfo extends Lease {
  /** The TTL the lease was granted with. */
  grantedTtl: number;
  /** Keys attached to the lease (with `keys: true`), keyPrefix stripped, as text. */
  keys: string[];
  /** The same keys as bytes. */
  keyBytes: Uint8Array[];
}

export interface GrantOptions extends CallOptions {
  /** Ask for this lease ID (a bigint, a safe-integer number or a decimal string); absent or 0: a random one. */
  id?: LeaseId | undefined;
}

export interface TimeToLiveOptions extends CallOptions {
  /** Also list the keys attached to the lease. */
  keys?: boolean | undefined;
}

const GRANT_OPTIONS = optionSet('id');
const CALL = optionSet();
const TTL_OPTIONS = optionSet('keys');

const GRANT_RESENDS = 2;

/** A random lease ID in [2^62, 2^63): positive int64, and never mistaken for a small number. */
export function randomLeaseId(): bigint {
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.readBigUInt64BE(0);
}

/** etcd's upper bound for a lease TTL (9,000,000,000 s). */
const MAX_TTL = 9_000_000_000;

export function leaseId(id: unknown): bigint {
  return toLeaseId(id, 'lease ID', 1n);
}

/** A lease ID as etcd, etcdctl and the lock and election keys write it: lower-case hex. */
export function leaseHex(id: bigint): string {
  return id.toString(16);
}

export async function grant(
  ctx: Context<unknown>,
  ttl: number,
  options: GrantOptions = {},
): Promise<Lease> {
  checkOptions('grant', options, GRANT_OPTIONS);
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > MAX_TTL) {
    throw new InvalidArgumentError(
      `grant: ttl must be a whole number of seconds from 1 to ${MAX_TTL}, got ${ttl}`,
    );
  }
  // Without an ID (or with the seed's 0), the client picks a random one rather
  // than etcd: then a grant whose answer was lost can be sent again with the
  // same ID, and "lease already exists" proves the first one was applied.
  // No lease is leaked by a lost answer, and none is granted twice.
  const wanted = options.id === undefined ? 0n : toLeaseId(options.id, 'lease ID');
  const chosen = wanted !== 0n;
  let id = chosen ? wanted : randomLeaseId();
  let resent = false;
  let res: Record<string, unknown>;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await ctx.transport.call(
        'lease/grant',
        { TTL: String(ttl), ID: id.toString() },
        options,
        true,
      );
      break;
    } catch (err) {
      if (err instanceof EtcdError && err.indeterminate && attempt < GRANT_RESENDS) {
        resent = true;
        continue;
      }
      if (err instanceof LeaseExistsError && resent) return { id, ttl };
      if (err instanceof LeaseExistsError && !chosen && attempt < GRANT_RESENDS) {
        id = randomLeaseId(); // another lease has that ID already: draw again
        continue;
      }
      throw err;
    }
  }
  const error = str(res.error, 'error');
  if (error) throw new ServerError(`grant: ${error}`);
  return { id: int64(res.ID, 'ID'), ttl: smallInt(res.TTL, 'TTL') };
}

export async function revoke(
  ctx: Context<unknown>,
  id: LeaseId,
  options: CallOptions = {},
): Promise<{ revision: bigint }> {
  checkOptions('revoke', options, CALL);
  const res = await ctx.transport.call(
    'lease/revoke',
    { ID: leaseId(id).toString() },
    options,
    true,
  );
  return { revision: headerRevision(res) };
}

/** One keepalive round: renews the lease and returns its new TTL. */
export async function keepalive(
  ctx: Context<unknown>,
  id: LeaseId,
  options: CallOptions = {},
): Promise<Lease> {
  checkOptions('keepalive', options, CALL);
  const wanted = leaseId(id);
  const res = await ctx.transport.call(
    'lease/keepalive',
    { ID: wanted.toString() },
    options,
    false,
  );
  // The keepalive endpoint is a stream: one `{result}` or `{error}` message.
  const streamError = optObject(res.error, 'error');
  if (streamError) {
    throw fromGatewayError(
      Number(streamError.grpc_code ?? 2),
      str(streamError.message, 'message'),
      {
        write: false,
      },
    );
  }
  const result = asObject(res.result, 'result');
  const ttl = smallInt(result.TTL, 'TTL');
  // etcd answers a keepalive of an unknown or expired lease with TTL 0.
  if (ttl <= 0)
    throw new LeaseNotFoundError(`lease ${leaseHex(wanted)} not found (expired or revoked)`);
  return { id: int64(result.ID, 'ID'), ttl };
}

/** The lease's remaining TTL, or `undefined` when it does not exist (anymore). */
export async function timetolive(
  ctx: Context<unknown>,
  id: LeaseId,
  options: TimeToLiveOptions = {},
): Promise<LeaseInfo | undefined> {
  checkOptions('timetolive', options, TTL_OPTIONS);
  const body: Record<string, unknown> = { ID: leaseId(id).toString() };
  if (options.keys === true) body.keys = true;
  const res = await ctx.transport.call('lease/timetolive', body, options, false);
  const ttl = smallInt(res.TTL, 'TTL');
  if (ttl < 0) return undefined;
  const keyBytes = asArray(res.keys, 'keys').map((k) => ctx.keys.strip(bytesField(k, 'key')));
  return {
    id: int64(res.ID, 'ID'),
    ttl,
    grantedTtl: smallInt(res.grantedTTL, 'grantedTTL'),
    keys: keyBytes.map(utf8),
    keyBytes,
  };
}

/** IDs of every lease the cluster holds. */
export async function leases(ctx: Context<unknown>, options: CallOptions = {}): Promise<bigint[]> {
  checkOptions('leases', options, CALL);
  const res = await ctx.transport.call('lease/leases', {}, options, false);
  return asArray(res.leases, 'leases').map((l) => int64(asObject(l, 'lease').ID, 'ID'));
}
