/**
 * A codec turns values into the bytes etcd stores and back. `json` is the
 * default, as in the seed API; `string` stores UTF-8 text; `bytes` stores
 * Uint8Array as is. A custom codec is any object with `encode` and `decode`.
 */
import { utf8 } from './bytes.js';
import { CodecError } from './errors.js';
import { jsonProblem } from './json-check.js';

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

/**
 * Refuses, before anything is sent, every value JSON would not give back equal:
 * a Date would come back a string, a Map an empty object, `undefined` vanish.
 */
export const jsonCodec: Codec<JsonValue> = {
  name: 'json',
  encode(value) {
    let problem: string | undefined;
    try {
      problem = jsonProblem(value);
      if (problem === undefined) return Buffer.from(JSON.stringify(value), 'utf8');
    } catch (err) {
      // A throwing getter, or nesting deeper than the stack.
      throw new CodecError(`cannot encode as JSON: ${(err as Error).message}`, { cause: err });
    }
    throw new CodecError(`cannot encode as JSON exactly: ${problem}`);
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
