/**
 * `Member` is what every process sees of one member of a group: its ID, its
 * capabilities and the lease its key lives on. The key is `<group>/<id>`; the
 * value is JSON text `{"capabilities":{...}}`, read and written as bytes so
 * that a client of any codec works. A key with a value this package cannot
 * read is still a member, with no capabilities: membership is the key.
 */
import { InvalidArgumentError, type KeyValue } from '@etcdkit/client';

/** Free-form string attributes a member announces: `{ zone: 'a', gpu: 'yes' }`. */
export type Capabilities = Readonly<Record<string, string>>;

export interface Member {
  readonly id: string;
  readonly capabilities: Capabilities;
  /** The lease the member's key lives on. */
  readonly lease: bigint;
  /** The revision the member joined at: its key's create revision. */
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

/**
 * Member IDs: 1 to 128 letters, digits, `.`, `_`, `-`, `:` or `@`, starting
 * with a letter, digit or `_`. No `/` (it separates key parts) and no
 * whitespace, so an ID never needs quoting and hashes without ambiguity.
 */
export const MEMBER_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127}$/;

/** Capability names follow the member ID rule; values are strings of up to 1,024 characters. */
const MAX_CAPABILITY_VALUE = 1024;
const MAX_CAPABILITIES = 64;

export function checkMemberId(value: unknown): string {
  if (typeof value !== 'string' || !MEMBER_ID_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      `member ID ${JSON.stringify(value)} must be 1 to 128 letters, digits, ".", "_", "-", ":" ` +
        'or "@", starting with a letter, digit or "_"',
    );
  }
  return value;
}

/** Checks capabilities and returns a frozen copy, so later changes by the caller do not leak in. */
export function checkCapabilities(value: unknown): Capabilities {
  if (value === undefined) return Object.freeze({});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('capabilities must be an object of strings');
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_CAPABILITIES) {
    throw new InvalidArgumentError(
      `at most ${MAX_CAPABILITIES} capabilities, got ${entries.length}`,
    );
  }
  for (const [name, v] of entries) {
    if (!MEMBER_ID_PATTERN.test(name)) {
      throw new InvalidArgumentError(
        `capability name ${JSON.stringify(name)} must follow the member ID rule`,
      );
    }
    if (typeof v !== 'string' || v.length > MAX_CAPABILITY_VALUE) {
      throw new InvalidArgumentError(
        `capability ${name} must be a string of up to ${MAX_CAPABILITY_VALUE} characters`,
      );
    }
  }
  return Object.freeze(Object.fromEntries(entries) as Record<string, string>);
}

export function encodeMember(capabilities: Capabilities): Uint8Array {
  return Buffer.from(JSON.stringify({ capabilities }), 'utf8');
}

/** The member a key under `prefix` stands for, or undefined for a key that is not a member's. */
export function decodeMember(prefix: string, kv: KeyValue<unknown>): Member | undefined {
  if (!kv.key.startsWith(prefix)) return undefined;
  const id = kv.key.slice(prefix.length);
  if (!MEMBER_ID_PATTERN.test(id)) return undefined;
  let capabilities: Capabilities = Object.freeze({});
  try {
    const parsed = JSON.parse(Buffer.from(kv.valueBytes).toString('utf8')) as {
      capabilities?: unknown;
    };
    capabilities = checkCapabilities(parsed.capabilities);
  } catch {
    // not written by this package: a member all the same
  }
  return Object.freeze({
    id,
    capabilities,
    lease: kv.lease,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
  });
}

export const byId = (a: Member, b: Member) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
