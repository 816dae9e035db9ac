/**
 * `KeyValue` is etcdkit's own view of a stored pair. The key has the client's
 * `keyPrefix` stripped; the value is decoded by the client's codec on first
 * access, so a listing with one undecodable value still reads, and a
 * `keysOnly` listing never decodes at all.
 */
import { type KeySpace, utf8 } from './bytes.js';
import type { Codec } from './codec.js';
import { asArray, asObject, bytesField, int64, smallInt } from './wire.js';

export interface KeyValue<V = unknown> {
  /** The key as UTF-8 text, with the client's keyPrefix stripped. */
  readonly key: string;
  /** The key's bytes, with the client's keyPrefix stripped. */
  readonly keyBytes: Uint8Array;
  /** The value decoded by the client's codec; throws `CodecError` if it cannot be. */
  readonly value: V;
  /** The stored bytes of the value (empty for `keysOnly` reads). */
  readonly valueBytes: Uint8Array;
  /** Revision of the key's creation; the key's identity across delete and re-create. */
  readonly createRevision: bigint;
  /** Revision of the key's last modification. */
  readonly modRevision: bigint;
  /** Number of modifications since creation (1 after the first put). */
  readonly version: number;
  /** ID of the attached lease, or 0n for none. */
  readonly lease: bigint;
}

class StoredKeyValue<V> implements KeyValue<V> {
  readonly keyBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: number;
  readonly lease: bigint;
  readonly #codec: Codec<V>;
  #key: string | undefined;
  #decoded = false;
  #value: V | undefined;

  constructor(raw: Record<string, unknown>, keys: KeySpace, codec: Codec<V>) {
    this.keyBytes = keys.strip(bytesField(raw.key, 'kv.key'));
    this.valueBytes = bytesField(raw.value, 'kv.value');
    this.createRevision = int64(raw.create_revision, 'kv.create_revision');
    this.modRevision = int64(raw.mod_revision, 'kv.mod_revision');
    this.version = smallInt(raw.version, 'kv.version');
    this.lease = int64(raw.lease, 'kv.lease');
    this.#codec = codec;
  }

  get key(): string {
    this.#key ??= utf8(this.keyBytes);
    return this.#key;
  }

  get value(): V {
    if (!this.#decoded) {
      this.#value = this.#codec.decode(this.valueBytes);
      this.#decoded = true;
    }
    return this.#value as V;
  }

  /** How console.log and util.inspect show a pair: its fields, with the value decoded if it can be. */
  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    let value: unknown;
    try {
      value = this.value;
    } catch {
      value = this.valueBytes;
    }
    const { key, createRevision, modRevision, version, lease } = this;
    return { key, value, createRevision, modRevision, version, lease };
  }

  toJSON(): Record<string, unknown> {
    return {
      key: this.key,
      value: this.#decoded ? this.#value : utf8(this.valueBytes),
      createRevision: String(this.createRevision),
      modRevision: String(this.modRevision),
      version: this.version,
      lease: String(this.lease),
    };
  }
}

export function decodeKeyValue<V>(raw: unknown, keys: KeySpace, codec: Codec<V>): KeyValue<V> {
  return new StoredKeyValue(asObject(raw, 'kv'), keys, codec);
}

export function decodeKeyValues<V>(raw: unknown, keys: KeySpace, codec: Codec<V>): KeyValue<V>[] {
  return asArray(raw, 'kvs').map((item) => decodeKeyValue(item, keys, codec));
}
