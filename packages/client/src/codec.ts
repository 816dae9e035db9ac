/**
 * A codec turns values into the bytes etcd stores and back. `json` is the
 * default, as in the seed API; `string` stores UTF-8 text; `bytes` stores
 * Uint8Array as is. A custom codec is any object with `encode` and `decode`.
 */
import { utf8 } from './bytes.js';
import { CodecError } from './errors.js';

export interface Codec<T> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Any value JSON can represent exactly. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Refuses what JSON.stringify would silently turn into null or drop. */
function rejectNonJson(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new CodecError(`${value} is not representable in JSON`);
  }
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new CodecError(`a ${typeof value} cannot be encoded as JSON`);
  }
  return value;
}

export const jsonCodec: Codec<JsonValue> = {
  name: 'json',
  encode(value) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value, rejectNonJson);
    } catch (err) {
      if (err instanceof CodecError) throw err;
      throw new CodecError(`the value cannot be encoded as JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (text === undefined) throw new CodecError(`a ${typeof value} cannot be encoded as JSON`);
    return Buffer.from(text, 'utf8');
  },
  decode(bytes) {
    const text = utf8(bytes);
    try {
      return JSON.parse(text) as JsonValue;
    } catch (err) {
      throw new CodecError(`the stored value is not JSON: ${JSON.stringify(text.slice(0, 60))}`, {
        cause: err,
      });
    }
  },
};

export const stringCodec: Codec<string> = {
  name: 'string',
  encode(value) {
    if (typeof value !== 'string')
      throw new CodecError(`the string codec takes strings, got ${typeof value}`);
    return Buffer.from(value, 'utf8');
  },
  decode: utf8,
};

export const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  encode(value) {
    if (!(value instanceof Uint8Array)) {
      throw new CodecError(`the bytes codec takes Uint8Array, got ${typeof value}`);
    }
    return value;
  },
  decode(bytes) {
    return bytes;
  },
};

export type CodecName = 'json' | 'string' | 'bytes';

export function codecByName(name: CodecName): Codec<unknown> {
  switch (name) {
    case 'json':
      return jsonCodec as Codec<unknown>;
    case 'string':
      return stringCodec as Codec<unknown>;
    case 'bytes':
      return bytesCodec as Codec<unknown>;
  }
}
