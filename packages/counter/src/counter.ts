/**
 * A shared counter under one key, stored as decimal text.
 *
 * How it works: a change reads the key (value and mod revision), computes the
 * new value, and writes it in a txn that compares the mod revision with the
 * one read, so it applies only if nobody wrote in between. When the compare
 * fails, the same txn reads the key back and the change is tried again from
 * there. A write whose outcome is unknown is not tried again: it may have been
 * applied, and a second add would count twice.
 */
import {
  type CallOptions,
  Compare,
  type Etcd,
  EtcdError,
  InvalidArgumentError,
  isClient,
  type Key,
  type KeyValue,
  Op,
  type TxnResult,
} from '@etcdkit/client';
import { parseCounter, toBigInt } from './decimal.js';
import { CounterIndeterminateError } from './errors.js';

/** Options of every counter call. */
export interface CounterCallOptions {
  /** Give up: rejects with `signal.reason` (with CounterIndeterminateError if a write was on its way). */
  signal?: AbortSignal | undefined;
  /** Deadline of each request, in ms. Default: the client's `timeout`. */
  timeout?: number | undefined;
}

export interface CompareAndSetResult {
  /** The counter held `expected` and now holds `next`. */
  swapped: boolean;
  /** The counter's value: `next` if swapped, else the value found instead of `expected`. */
  value: bigint;
}

interface Seen {
  value: bigint;
  /** 0n when the key does not exist: a compare on it then means "still absent". */
  modRevision: bigint;
}

const CALL_OPTIONS = new Set(['signal', 'timeout']);

function checkCall(method: string, options: unknown): CallOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`${method}: options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!CALL_OPTIONS.has(name)) {
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: signal, timeout)`,
      );
    }
  }
  return options as CallOptions;
}

export class Counter {
  /** The key the counter lives under. */
  readonly key: Key;
  readonly #etcd: Etcd<unknown>;
  readonly #name: string;

  /** The counter under `key`. A missing key counts as 0n. */
  constructor(etcd: Etcd<unknown>, key: Key) {
    if (!isClient(etcd))
      throw new InvalidArgumentError('new Counter(etcd, key): etcd must be an Etcd client');
    if (!((typeof key === 'string' || key instanceof Uint8Array) && key.length > 0)) {
      throw new InvalidArgumentError(
        'new Counter(etcd, key): key must be a non-empty string or Uint8Array',
      );
    }
    this.#etcd = etcd;
    this.key = key;
    this.#name = Buffer.from(key).toString('utf8');
  }

  /** The current value (a linearizable read); 0n when the key does not exist. */
  async get(options: CounterCallOptions = {}): Promise<bigint> {
    return (await this.#read(checkCall('get', options))).value;
  }

  /** Adds `delta` (negative to subtract) atomically; resolves to the value after this add. */
  async add(delta: bigint | number, options: CounterCallOptions = {}): Promise<bigint> {
    const by = toBigInt(delta, 'add: delta');
    const call = checkCall('add', options);
    return (await this.#change(call, (current) => current + by)).value;
  }

  /** Sets the counter to `next` if it holds `expected` (a missing key holds 0n). */
  async compareAndSet(
    expected: bigint | number,
    next: bigint | number,
    options: CounterCallOptions = {},
  ): Promise<CompareAndSetResult> {
    const from = toBigInt(expected, 'compareAndSet: expected');
    const to = toBigInt(next, 'compareAndSet: next');
    const call = checkCall('compareAndSet', options);
    return this.#change(call, (current) => (current === from ? to : undefined));
  }

  /** Sets the counter to `value`, whatever it held (even text that is not a number). */
  async set(value: bigint | number, options: CounterCallOptions = {}): Promise<void> {
    const to = toBigInt(value, 'set: value');
    const call = checkCall('set', options);
    try {
      await this.#etcd.txn().success(Op.putRaw(this.key, to.toString())).commit(call);
    } catch (err) {
      throw unsure(err, call.signal, `set of counter ${this.#name}`);
    }
  }

  /** Sets the counter back to 0n by deleting its key. */
  async reset(options: CounterCallOptions = {}): Promise<void> {
    const call = checkCall('reset', options);
    try {
      await this.#etcd.delete(this.key, call);
    } catch (err) {
      throw unsure(err, call.signal, `reset of counter ${this.#name}`);
    }
  }

  async #read(call: CallOptions): Promise<Seen> {
    return this.#seen(await this.#etcd.get(this.key, call));
  }

  #seen(kv: KeyValue<unknown> | undefined): Seen {
    return { value: parseCounter(this.#name, kv), modRevision: kv?.modRevision ?? 0n };
  }

  /** Writes `next(current)` unless it is undefined, retried from a fresh read on conflict. */
  async #change(
    call: CallOptions,
    next: (current: bigint) => bigint | undefined,
  ): Promise<CompareAndSetResult> {
    let seen = await this.#read(call);
    for (;;) {
      const target = next(seen.value);
      if (target === undefined) return { swapped: false, value: seen.value };
      let result: TxnResult<unknown>;
      try {
        result = await this.#etcd
          .txn()
          .if(Compare.modRevision(this.key, '=', seen.modRevision))
          .success(Op.putRaw(this.key, target.toString()))
          .failure(Op.get(this.key))
          .commit(call);
      } catch (err) {
        throw unsure(err, call.signal, `write of ${target} to counter ${this.#name}`);
      }
      if (result.succeeded) return { swapped: true, value: target };
      const reread = result.results[0];
      seen = this.#seen(reread?.type === 'range' ? reread.kvs[0] : undefined);
    }
  }
}

/** A failed write as the caller should see it: CounterIndeterminateError when it may have been applied. */
function unsure(err: unknown, signal: AbortSignal | undefined, what: string): unknown {
  if (err instanceof EtcdError && err.indeterminate) {
    return new CounterIndeterminateError(
      `${what}: outcome unknown, not retried: ${err.message}`,
      err,
    );
  }
  // The client rejects an aborted call with the reason, sent or not: assume it was sent.
  if (signal?.aborted && err === signal.reason) {
    return new CounterIndeterminateError(`${what}: aborted on its way, may have been applied`, err);
  }
  return err;
}
