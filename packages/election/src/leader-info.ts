/**
 * What an election stores and reports. Values are stored as raw bytes, never
 * through the client's codec, because `etcdctl elect` and Go services store
 * the proposal as a plain string: a JSON-encoded `"a"` would read as `"a"`
 * with its quotes on their side.
 */
import { InvalidArgumentError, type KeyValue } from '@etcdkit/client';

/** A proposal: text (stored as UTF-8) or bytes (stored as they are). */
export type ElectionValue = string | Uint8Array;

/** A candidate of an election at one revision: the oldest one leads. */
export interface Candidate {
  /** The candidate's key, `<name>/<lease ID in hex>` (without the client's keyPrefix). */
  readonly key: string;
  /** The proclaimed value as UTF-8 text (invalid sequences become U+FFFD). */
  readonly value: string;
  /** The proclaimed value's exact bytes. */
  readonly valueBytes: Uint8Array;
  /** The key's create revision: its place in line, and its fencing token once it leads. */
  readonly token: bigint;
  /** The revision of the last proclaim (or of the campaign that created the key). */
  readonly modRevision: bigint;
  /** The candidate's lease ID. */
  readonly lease: bigint;
}

/** The leader of an election at one revision: its first candidate. */
export type LeaderInfo = Candidate;

const decoder = new TextDecoder();

/** A stored pair as a `Candidate`. */
export function toCandidate(kv: KeyValue<unknown>): Candidate {
  return {
    key: kv.key,
    value: decoder.decode(kv.valueBytes),
    valueBytes: kv.valueBytes,
    token: kv.createRevision,
    modRevision: kv.modRevision,
    lease: kv.lease,
  };
}

/** The bytes to store for a proposal; anything but text or bytes is refused. */
export function valueBytes(value: ElectionValue): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(
    `an election value is a string or a Uint8Array, got ${value === null ? 'null' : typeof value}`,
  );
}

/** Whether two byte strings are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
