/**
 * One run of an STM function: what it read, what it will write, and the
 * commit that makes those writes happen only if its reads still hold.
 *
 * How it works: `get` reads a key once per run and remembers its pair (and so
 * its mod revision); `put` and `del` only record the write, and later `get`s
 * of that key see it. Under `serializable` the first read fixes the run's
 * revision and every later read is served at that revision, so the run sees
 * one snapshot. Concurrent `get`s share one read per key, and under
 * `serializable` wait for the first read so they use its revision. The commit
 * is one txn: compares on the reads (and, under `serializable`, on the
 * writes), the writes if they hold, and else a fresh read of the keys read, to
 * seed the next run without another round trip.
 */
import {
  Compare,
  type Etcd,
  InvalidArgumentError,
  type Key,
  type KeyValue,
  Op,
  type TxnResult,
} from '@etcdkit/client';
import { type Isolation, isKey } from './options.js';

type Stored<V> = KeyValue<V> | undefined;

interface Read<V> {
  readonly key: Key;
  readonly kv: Stored<V>;
}

interface Write<V> {
  readonly key: Key;
  readonly op: Op;
  /** What a later `get` of the key returns: the value put, or undefined after `del`. */
  readonly value: V | undefined;
}

/** Keys read at one revision, handed from a failed commit to the next run. */
export interface Snapshot<V> {
  readonly revision: bigint;
  readonly reads: Map<string, Read<V>>;
}

/** The txn that commits a run; `reads` are the keys its `failure` branch reads back. */
export interface CommitPlan {
  readonly compare: Compare[];
  readonly success: Op[];
  readonly failure: Op[];
  readonly reads: Key[];
}

export interface PutOptions {
  /** Attach the key to this lease (a `Session`'s `lease`, say). Default: no lease. */
  lease?: bigint | undefined;
}

/** Map key of a key: strings and their UTF-8 bytes are the same key. */
function idOf(key: Key): string {
  return Buffer.from(key).toString('hex');
}

function checkKey(method: string, key: unknown): asserts key is Key {
  if (!isKey(key)) {
    throw new InvalidArgumentError(`tx.${method}: key must be a non-empty string or Uint8Array`);
  }
}

export class Transaction<V> {
  /** The isolation this run has. */
  readonly isolation: Isolation;
  readonly #etcd: Etcd<V>;
  readonly #signal: AbortSignal | undefined;
  readonly #reads = new Map<string, Read<V>>();
  /** Reads on their way, by key: concurrent `get`s of one key share one. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #writes = new Map<string, Write<V>>();
  #prefetched: Snapshot<V> | undefined;
  /** Under `serializable`, the revision every read is served at, once the first read fixed it. */
  #revision: bigint | undefined;
  #first: Promise<void> | undefined;
  #over = false;

  /** Made by `stm()`; one per run of the function. */
  constructor(
    etcd: Etcd<V>,
    isolation: Isolation,
    signal: AbortSignal | undefined,
    prefetched: Snapshot<V> | undefined,
  ) {
    this.#etcd = etcd;
    this.isolation = isolation;
    this.#signal = signal;
    this.#prefetched = prefetched;
  }

  /** The key's value (decoded by the client's codec), or undefined when it does not exist. */
  async get(key: Key): Promise<V | undefined> {
    checkKey('get', key);
    const written = this.#writes.get(idOf(key));
    if (written) return written.value;
    await this.read([key]);
    return this.#reads.get(idOf(key))?.kv?.value;
  }

  /** The key's mod revision as this run read it; 0n when it does not exist. */
  async rev(key: Key): Promise<bigint> {
    checkKey('rev', key);
    await this.read([key]);
    return this.#reads.get(idOf(key))?.kv?.modRevision ?? 0n;
  }

  /** Writes `value` at commit; `get` of the key returns it from now on. */
  put(key: Key, value: V, options: PutOptions = {}): void {
    checkKey('put', key);
    this.#live();
    const { lease, ...unknown } = options;
    if (Object.keys(unknown).length > 0 || (lease !== undefined && typeof lease !== 'bigint')) {
      throw new InvalidArgumentError('tx.put: the only option is lease, a bigint');
    }
    const op = Op.put(key, value, lease === undefined ? {} : { lease });
    this.#writes.set(idOf(key), { key, op, value });
  }

  /** Deletes the key at commit; `get` of the key returns undefined from now on. */
  del(key: Key): void {
    checkKey('del', key);
    this.#live();
    this.#writes.set(idOf(key), { key, op: Op.delete(key), value: undefined });
  }

  /** Reads the keys not read yet in this run, in one round trip. */
  async read(keys: readonly Key[]): Promise<void> {
    this.#live();
    if (this.isolation === 'serializable' && this.#revision === undefined && this.#first) {
      await this.#first;
      this.#live();
    }
    const wanted = new Map<string, Key>();
    for (const key of keys) {
      const id = idOf(key);
      if (!this.#reads.has(id) && !this.#pending.has(id)) wanted.set(id, key);
    }
    this.#takePrefetched(wanted);
    if (wanted.size > 0) {
      const round = this.#round(wanted);
      for (const id of wanted.keys()) this.#pending.set(id, round);
      if (this.isolation === 'serializable' && this.#revision === undefined) {
        this.#first = round.catch(() => undefined);
      }
    }
    await Promise.all(keys.map((key) => this.#pending.get(idOf(key))));
    this.#live();
  }

  async #round(wanted: Map<string, Key>): Promise<void> {
    const at = this.#revision === undefined ? {} : { revision: this.#revision };
    const keys = [...wanted.values()];
    try {
      const result = await this.#etcd
        .txn()
        .success(...keys.map((key) => Op.get(key, at)))
        .commit({ signal: this.#signal });
      if (this.#over) return;
      if (this.isolation === 'serializable') this.#revision ??= result.revision;
      for (const [id, read] of readsOf(keys, result)) this.#reads.set(id, read);
    } finally {
      for (const id of wanted.keys()) this.#pending.delete(id);
    }
  }

  /** Moves wanted keys the last failed commit read back into this run's reads, when they fit its snapshot. */
  #takePrefetched(wanted: Map<string, Key>): void {
    const prefetched = this.#prefetched;
    if (!prefetched) return;
    if (this.isolation === 'serializable') {
      if (this.#revision === undefined) this.#revision = prefetched.revision;
      else if (this.#revision !== prefetched.revision) {
        this.#prefetched = undefined;
        return;
      }
    }
    for (const [id, read] of prefetched.reads) {
      if (!wanted.has(id)) continue;
      this.#reads.set(id, read);
      prefetched.reads.delete(id);
      wanted.delete(id);
    }
  }

  #live(): void {
    if (this.#over) {
      throw new InvalidArgumentError(
        'this STM run is over: use the transaction only inside its function, before it returns',
      );
    }
    this.#signal?.throwIfAborted();
  }

  /** Ends the run: later calls on this object throw. */
  end(): void {
    this.#over = true;
  }

  /** The txn that commits this run at its isolation level. */
  plan(): CommitPlan {
    const reads = this.isolation === 'read-committed' ? [] : [...this.#reads.values()];
    const writes = [...this.#writes.values()];
    const compare = reads.map((r) => Compare.modRevision(r.key, '=', r.kv?.modRevision ?? 0n));
    // A run that read nothing has no snapshot, so its writes conflict with nothing (as in Go).
    if (this.isolation === 'serializable' && this.#revision !== undefined) {
      const revision = this.#revision;
      for (const w of writes) compare.push(Compare.modRevision(w.key, '<', revision + 1n));
    }
    return {
      compare,
      success: writes.map((w) => w.op),
      failure: reads.map((r) => Op.get(r.key)),
      reads: reads.map((r) => r.key),
    };
  }
}

/** What a failed commit's `failure` branch read: the next run starts from it. */
export function snapshotOf<V>(plan: CommitPlan, result: TxnResult<V>): Snapshot<V> {
  return { revision: result.revision, reads: readsOf(plan.reads, result) };
}

/** The pairs a txn of one `get` per key read, by key. */
function readsOf<V>(keys: readonly Key[], result: TxnResult<V>): Map<string, Read<V>> {
  const reads = new Map<string, Read<V>>();
  keys.forEach((key, i) => {
    const response = result.results[i];
    reads.set(idOf(key), { key, kv: response?.type === 'range' ? response.kvs[0] : undefined });
  });
  return reads;
}
