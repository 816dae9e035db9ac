/**
 * The workloads, each written once per implementation with the same keys,
 * value sizes and counts. To add one, append an entry to WORKLOADS: a name, how
 * many operations are in flight, an optional seed (run once by the runner,
 * never measured), and per implementation a `prepare` that sets up what it
 * needs and returns the operation. An implementation left out is shown as "—".
 */
import type { Etcd } from '@etcdkit/client';
import type { Etcd3 } from 'etcd3';
import { IMPLEMENTATIONS, type Implementation } from './protocol.js';
import type { RawGateway } from './raw.js';

export interface Clients {
  etcdkit: Etcd<string>;
  etcd3: Etcd3;
  raw: RawGateway;
}

/** One operation; `i` counts from 0 over warm-up and measured phase together. */
export type Operation = (i: number) => Promise<void>;

export interface PrepareContext {
  /** Which implementation runs, for workloads whose state must not be shared. */
  implementation: Implementation;
  /**
   * Records one hand-off, from `from` to `to` (`performance.now()`); kept
   * when both fall within a measured slice.
   */
  handOff(from: number, to: number): void;
}

export type Prepare<C> = (client: C, ctx: PrepareContext) => Promise<Operation>;

export interface Workload {
  /** Short name, used on the command line. */
  name: string;
  /** What one operation is, for the table. */
  title: string;
  /** Operations in flight: 1 measures latency, more measure throughput. */
  concurrency: number;
  /** Warm-up operations, when fewer than the runner's default do (heavy operations). */
  warmupOps?: number;
  /** Writes the data the workload reads. Runs in the runner before the first child. */
  seed?: (etcd: Etcd<string>) => Promise<void>;
  prepare: { [K in Implementation]?: Prepare<Clients[K]> };
}

/** Bytes of each value written by put and read by get. */
const VALUE_BYTES = 256;
/** Puts cycle over this many keys. */
const PUT_KEYS = 1000;
/** Gets cycle over this many keys (one per request in flight). */
const GET_KEYS = 64;
/** Keys under the readdir prefix, and the size of their values. */
const DIR_KEYS = 1000;
const DIR_VALUE_BYTES = 128;
const LEASE_TTL = 60;
const ROOT = 'bench/';

/** Values are printable ASCII, so every implementation sends the same bytes. */
function textValue(size: number): string {
  let out = '';
  for (let i = 0; i < size; i++) out += String.fromCharCode(97 + (i % 26));
  return out;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function keyOf(space: string, n: number): string {
  return `${ROOT}${space}/${String(n).padStart(4, '0')}`;
}

/** Every result is stored here, so that none is left unread. */
export let sink: unknown;

async function seedKeys(etcd: Etcd<string>, space: string, count: number, bytes: number) {
  const value = textValue(bytes);
  for (let i = 0; i < count; i += 64) {
    const batch = [];
    for (let n = i; n < Math.min(count, i + 64); n++) batch.push(etcd.set(keyOf(space, n), value));
    await Promise.all(batch);
  }
}

function put(name: string, concurrency: number): Workload {
  const value = textValue(VALUE_BYTES);
  const keys = Array.from({ length: PUT_KEYS }, (_, n) => keyOf('put', n));
  return {
    name,
    title: `put ${VALUE_BYTES} B`,
    concurrency,
    prepare: {
      etcdkit: async (etcd) => async (i) => {
        sink = await etcd.set(keys[i % PUT_KEYS]!, value);
      },
      etcd3: async (etcd) => async (i) => {
        sink = await etcd.put(keys[i % PUT_KEYS]!).value(value);
      },
      raw: async (raw) => {
        const v = b64(value);
        const bodies = keys.map((k) => JSON.stringify({ key: b64(k), value: v }));
        return async (i) => {
          sink = await raw.post('kv/put', bodies[i % PUT_KEYS]!);
        };
      },
    },
  };
}

function get(name: string, concurrency: number): Workload {
  const keys = Array.from({ length: GET_KEYS }, (_, n) => keyOf('get', n));
  return {
    name,
    title: `get ${VALUE_BYTES} B`,
    concurrency,
    seed: (etcd) => seedKeys(etcd, 'get', GET_KEYS, VALUE_BYTES),
    prepare: {
      // etcdkit decodes values lazily; reading `.value` makes it do what etcd3's string() does.
      etcdkit: async (etcd) => async (i) => {
        sink = (await etcd.get(keys[i % GET_KEYS]!))?.value;
      },
      etcd3: async (etcd) => async (i) => {
        sink = await etcd.get(keys[i % GET_KEYS]!).string();
      },
      raw: async (raw) => {
        const bodies = keys.map((k) => JSON.stringify({ key: b64(k) }));
        return async (i) => {
          sink = await raw.post('kv/range', bodies[i % GET_KEYS]!);
        };
      },
    },
  };
}

const DIR = `${ROOT}dir/`;

const readdir: Workload = {
  name: 'readdir',
  title: `readdir ${DIR_KEYS} keys × ${DIR_VALUE_BYTES} B`,
  concurrency: 1,
  // Each operation decodes a thousand pairs: a few hundred warm every code path.
  warmupOps: 150,
  seed: (etcd) => seedKeys(etcd, 'dir', DIR_KEYS, DIR_VALUE_BYTES),
  prepare: {
    etcdkit: async (etcd) => {
      const check = await etcd.readdir(DIR);
      if (check.kvs.length !== DIR_KEYS) throw new Error(`readdir saw ${check.kvs.length} keys`);
      // Builds what etcd3's strings() returns, key → value, so both decode every pair.
      return async () => {
        const page = await etcd.readdir(DIR);
        const out: Record<string, string> = {};
        for (const kv of page.kvs) out[kv.key] = kv.value;
        sink = out;
      };
    },
    etcd3: async (etcd) => {
      const check = await etcd.getAll().prefix(DIR).keys();
      if (check.length !== DIR_KEYS) throw new Error(`readdir saw ${check.length} keys`);
      return async () => {
        sink = await etcd.getAll().prefix(DIR).strings();
      };
    },
    raw: async (raw) => {
      const body = JSON.stringify({ key: b64(DIR), range_end: b64(`${ROOT}dir0`) });
      const check = JSON.parse(await raw.post('kv/range', body)) as { count?: string };
      if (check.count !== String(DIR_KEYS)) throw new Error(`readdir saw ${check.count} keys`);
      return async () => {
        sink = await raw.post('kv/range', body);
      };
    },
  },
};

/**
 * Each implementation counts on its own keys, of the same length, because
 * their slices interleave; a shared counter would make the others' compares
 * fail. One counter per operation in flight.
 */
function casKey(impl: Implementation, slot: number): string {
  return `${ROOT}cas/${impl.padEnd(7, '_')}/${String(slot).padStart(2, '0')}`;
}

/**
 * Counters for operations in flight: each operation takes a free one and gives
 * it back, so no two operations ever compare the same counter at once.
 */
class Counters {
  readonly #free: number[];
  readonly #values: number[];

  constructor(values: number[]) {
    this.#values = values;
    this.#free = values.map((_, i) => i);
  }

  async use(cas: (slot: number, n: number) => Promise<void>): Promise<void> {
    const slot = this.#free.pop();
    if (slot === undefined) throw new Error('more operations in flight than counters');
    try {
      await cas(slot, this.#values[slot]!);
      this.#values[slot]!++;
    } finally {
      this.#free.push(slot);
    }
  }
}

/**
 * Compare-and-swap of a counter: if the value is the last one seen, write the
 * next; otherwise read the current one. One writer per key, so every compare
 * holds. The counters start at 0 for every implementation.
 */
function txnCas(name: string, concurrency: number): Workload {
  const slots = Array.from({ length: concurrency }, (_, i) => i);
  return {
    name,
    title: 'txn: value = n ? put n+1 : get',
    concurrency,
    seed: async (etcd) => {
      for (const impl of IMPLEMENTATIONS)
        for (const slot of slots) await etcd.set(casKey(impl, slot), '0');
    },
    prepare: {
      etcdkit: async (etcd, { implementation }) => {
        // Loaded here, not above: the other implementations' processes never load etcdkit.
        const { Compare, Op } = await import('@etcdkit/client');
        const keys = slots.map((slot) => casKey(implementation, slot));
        const counters = new Counters(
          await Promise.all(keys.map(async (k) => Number((await etcd.get(k))?.value))),
        );
        return () =>
          counters.use(async (slot, n) => {
            const key = keys[slot]!;
            const r = await etcd
              .txn()
              .if(Compare.value(key, '=', String(n)))
              .success(Op.put(key, String(n + 1)))
              .failure(Op.get(key))
              .commit();
            if (!r.succeeded) throw new Error('compare-and-swap lost');
          });
      },
      etcd3: async (etcd, { implementation }) => {
        const keys = slots.map((slot) => casKey(implementation, slot));
        const counters = new Counters(
          await Promise.all(keys.map(async (k) => Number(await etcd.get(k).string()))),
        );
        return () =>
          counters.use(async (slot, n) => {
            const key = keys[slot]!;
            const r = await etcd
              .if(key, 'Value', '==', String(n))
              .then(etcd.put(key).value(String(n + 1)))
              .else(etcd.get(key))
              .commit();
            if (!r.succeeded) throw new Error('compare-and-swap lost');
          });
      },
      raw: async (raw, { implementation }) => {
        const keys = slots.map((slot) => b64(casKey(implementation, slot)));
        const read = async (key: string) => {
          const current = JSON.parse(await raw.post('kv/range', JSON.stringify({ key }))) as {
            kvs?: { value: string }[];
          };
          return Number(Buffer.from(current.kvs?.[0]?.value ?? '', 'base64').toString());
        };
        const counters = new Counters(await Promise.all(keys.map(read)));
        // Everything but the two counter values is encoded once; the counters are spliced in.
        const parts = keys.map((key) => ({
          head: `{"compare":[{"target":"VALUE","result":"EQUAL","key":"${key}","value":"`,
          middle: `"}],"success":[{"request_put":{"key":"${key}","value":"`,
          tail: `"}}],"failure":[{"request_range":{"key":"${key}"}}]}`,
        }));
        return () =>
          counters.use(async (slot, n) => {
            const { head, middle, tail } = parts[slot]!;
            const body = `${head}${b64(String(n))}${middle}${b64(String(n + 1))}${tail}`;
            const text = await raw.post('kv/txn', body);
            if (!text.includes('"succeeded":true')) throw new Error('compare-and-swap lost');
          });
      },
    },
  };
}

/**
 * Grant then revoke. etcd3's `lease()` keeps a lease alive by default; it is
 * created with `autoKeepAlive: false`, so both clients send exactly two calls.
 */
const lease: Workload = {
  name: 'lease',
  title: `lease grant ${LEASE_TTL} s + revoke`,
  concurrency: 1,
  prepare: {
    etcdkit: async (etcd) => async () => {
      const granted = await etcd.grant(LEASE_TTL);
      sink = await etcd.revoke(granted.id);
    },
    etcd3: async (etcd) => async () => {
      const granted = etcd.lease(LEASE_TTL, { autoKeepAlive: false });
      await granted.grant();
      sink = await granted.revoke();
    },
    raw: async (raw) => {
      const grant = JSON.stringify({ TTL: String(LEASE_TTL) });
      return async () => {
        const text = await raw.post('lease/grant', grant);
        const id = /"ID":"(\d+)"/.exec(text)?.[1];
        if (id === undefined) throw new Error(`grant answered ${text}`);
        sink = await raw.post('lease/revoke', `{"ID":"${id}"}`);
      };
    },
  },
};

/**
 * A put, then the wait until the prefix watcher delivers its event: the time
 * from the write to its delivery (with the write's own latency). With many in
 * flight, the events per second one watcher sustains. Each value is unique,
 * so each operation waits for its own event.
 */
function watch(name: string, concurrency: number): Workload {
  const keys = Array.from({ length: 64 }, (_, n) => keyOf('watch', n));
  const prefix = `${ROOT}watch/`;
  return {
    name,
    title: 'put → event delivered to a prefix watcher',
    concurrency,
    prepare: {
      etcdkit: async (etcd, { implementation }) => {
        const waiting = new Map<string, () => void>();
        const watcher = await etcd.watchdir(prefix);
        void (async () => {
          for await (const batch of watcher) {
            for (const e of batch.events) waiting.get(e.kv.value)?.();
          }
        })();
        return async (i) => {
          const value = `${implementation}-${i}`;
          const seen = new Promise<void>((resolve) => waiting.set(value, resolve));
          await etcd.set(keys[i % keys.length]!, value);
          await seen;
          waiting.delete(value);
        };
      },
      etcd3: async (etcd, { implementation }) => {
        const waiting = new Map<string, () => void>();
        const watcher = await etcd.watch().prefix(prefix).create();
        watcher.on('put', (kv) => waiting.get(kv.value.toString())?.());
        return async (i) => {
          const value = `${implementation}-${i}`;
          const seen = new Promise<void>((resolve) => waiting.set(value, resolve));
          await etcd.put(keys[i % keys.length]!).value(value);
          await seen;
          waiting.delete(value);
        };
      },
    },
  };
}

/** An uncontended lock and release, each implementation on its own lock. */
const lock: Workload = {
  name: 'lock',
  title: 'lock + release, uncontended',
  concurrency: 1,
  prepare: {
    etcdkit: async (etcd, { implementation }) => {
      const { Mutex } = await import('@etcdkit/mutex');
      const session = await etcd.session({ ttl: LEASE_TTL });
      const mutex = new Mutex(session, `${ROOT}lock/${implementation}`);
      return async () => {
        const held = await mutex.lock();
        await held.release();
      };
    },
    // etcd3's lock grants a lease per acquire; that is how it is used.
    etcd3:
      async (etcd, { implementation }) =>
      async () => {
        const held = await etcd.lock(`${ROOT}lock/${implementation}`).ttl(LEASE_TTL).acquire();
        await held.release();
      },
  },
};

/** A campaign that wins at once, then resigns, each implementation in its own election. */
const election: Workload = {
  name: 'election',
  title: 'campaign (uncontested) + resign',
  concurrency: 1,
  prepare: {
    etcdkit: async (etcd, { implementation }) => {
      const { Election } = await import('@etcdkit/election');
      const session = await etcd.session({ ttl: LEASE_TTL });
      const race = new Election(session, `${ROOT}election/${implementation}`);
      return async () => {
        const leadership = await race.campaign('bench');
        await leadership.resign();
      };
    },
    etcd3: async (etcd, { implementation }) => {
      const race = etcd.election(`${ROOT}election/${implementation}`, LEASE_TTL);
      return async () => {
        const campaign = race.campaign('bench');
        await campaign.wait();
        await campaign.resign();
      };
    },
  },
};

/**
 * Times hand-offs of one lock within one process: `acquired()` is called by
 * each new holder just before it releases. A lock has one holder at a time,
 * so the time since the previous holder's call is one hand-off (plus the
 * release call itself, which both implementations make the same way).
 */
function handOffClock(record: (from: number, to: number) => void): { acquired(): void } {
  let releasing: number | undefined;
  return {
    acquired() {
      const now = performance.now();
      if (releasing !== undefined) record(releasing, now);
      releasing = now;
    },
  };
}

/** Contenders in flight for the one lock of `lock-8`. */
const LOCK_CONTENDERS = 8;

/**
 * Contended hand-offs: 8 operations in flight, each locks the same lock (one
 * per implementation) and releases it at once. Ops/s are hand-offs per
 * second; latency is from asking to holding, plus the release. A hand-off
 * time runs from a holder's release call to the next holder's acquire.
 */
const lockContended: Workload = {
  name: 'lock-8',
  title: `lock + release, ${LOCK_CONTENDERS} contenders on one lock`,
  concurrency: LOCK_CONTENDERS,
  prepare: {
    // The contenders of one process share its session; each gets its own queue key.
    etcdkit: async (etcd, { implementation, handOff }) => {
      const { Mutex } = await import('@etcdkit/mutex');
      const session = await etcd.session({ ttl: LEASE_TTL });
      const mutex = new Mutex(session, `${ROOT}lock-8/${implementation}`);
      const clock = handOffClock(handOff);
      return async () => {
        const held = await mutex.lock();
        clock.acquired();
        await held.release();
      };
    },
    // etcd3's lock is try-once (no queue): like a user would, each contender
    // retries acquire() every 5 ms until it gets the lock.
    etcd3: async (etcd, { implementation, handOff }) => {
      const { EtcdLockFailedError } = await import('etcd3');
      const name = `${ROOT}lock-8/${implementation}`;
      const clock = handOffClock(handOff);
      return async () => {
        for (;;) {
          try {
            const held = await etcd.lock(name).ttl(LEASE_TTL).acquire();
            clock.acquired();
            await held.release();
            return;
          } catch (err) {
            if (!(err instanceof EtcdLockFailedError)) throw err;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
      };
    },
  },
};

/** Services and instances per service seeded for `registry-sync`. */
const REGISTRY_SERVICES = 5;
const REGISTRY_INSTANCES = 100;
const REGISTRY_PREFIX = `${ROOT}registry`;

// Loaded on use, so the other implementations' processes never load the registry.
const loadRegistry = () => import('@etcdkit/registry');

/**
 * A consumer's first sync: discover one of 5 services of 100 instances each,
 * wait for the initial listing, check it, close the set. etcd3 has no registry.
 */
const registrySync: Workload = {
  name: 'registry-sync',
  title: `discover → initial listing of ${REGISTRY_INSTANCES} instances → close`,
  concurrency: 1,
  seed: async (etcd) => {
    const { Registry } = await loadRegistry();
    // The session stays open for the runner's life, so the instances stay listed.
    const session = await etcd.session({ ttl: LEASE_TTL });
    const registry = new Registry(etcd, { prefix: REGISTRY_PREFIX });
    for (let s = 0; s < REGISTRY_SERVICES; s++) {
      const batch = [];
      for (let n = 0; n < REGISTRY_INSTANCES; n++) {
        const instance = { id: `i${n}`, address: '10.0.0.1', port: 8000 + n };
        batch.push(registry.register(`svc${s}`, instance, { session }));
      }
      await Promise.all(batch);
    }
  },
  prepare: {
    etcdkit: async (etcd) => {
      const { Registry } = await loadRegistry();
      const registry = new Registry(etcd, { prefix: REGISTRY_PREFIX });
      return async (i) => {
        // discover() resolves once the first listing is complete.
        const set = await registry.discover(`svc${i % REGISTRY_SERVICES}`);
        if (set.size !== REGISTRY_INSTANCES) {
          throw new Error(`${set.size} instances listed, expected ${REGISTRY_INSTANCES}`);
        }
        await set.close();
      };
    },
  },
};

const BIG_PREFIX = `${ROOT}registry-5000`;
const BIG_SERVICES = 50;
const BIG_INSTANCES = 100;

/**
 * A new consumer's initial sync of 5,000 instances: list the 50 services,
 * discover each (a full listing apiece) and check every count. etcd3 has no
 * registry.
 */
const registrySync5000: Workload = {
  name: 'registry-sync-5000',
  title: `services() + discover() of ${BIG_SERVICES} services × ${BIG_INSTANCES} instances`,
  concurrency: 1,
  warmupOps: 2,
  seed: async (etcd) => {
    const { Registry } = await loadRegistry();
    const session = await etcd.session({ ttl: LEASE_TTL });
    const registry = new Registry(etcd, { prefix: BIG_PREFIX });
    for (let s = 0; s < BIG_SERVICES; s++) {
      const batch = [];
      for (let n = 0; n < BIG_INSTANCES; n++) {
        batch.push(
          registry.register(
            `svc${s}`,
            { id: `i${n}`, address: '10.0.0.1', port: 8000 + n },
            { session },
          ),
        );
      }
      await Promise.all(batch);
    }
  },
  prepare: {
    etcdkit: async (etcd) => {
      const { Registry } = await loadRegistry();
      return async () => {
        const registry = new Registry(etcd, { prefix: BIG_PREFIX });
        const names = await registry.services();
        if (names.length !== BIG_SERVICES) throw new Error(`${names.length} services listed`);
        const sets = await Promise.all(names.map((name) => registry.discover(name)));
        const total = sets.reduce((sum, set) => sum + set.size, 0);
        if (total !== BIG_SERVICES * BIG_INSTANCES) throw new Error(`${total} instances listed`);
        await registry.close();
      };
    },
  },
};

/**
 * From a registration to every consumer seeing it, then from a deregistration
 * to every consumer seeing it gone: three consumers watch one service. A
 * crash is seen after the lease TTL instead; the registry tests measure that.
 */
const registryVisibility: Workload = {
  name: 'registry-visibility',
  title: 'register → seen by 3 consumers, deregister → gone from all 3',
  concurrency: 1,
  warmupOps: 50,
  prepare: {
    etcdkit: async (etcd, { implementation }) => {
      const { Registry } = await loadRegistry();
      const session = await etcd.session({ ttl: LEASE_TTL });
      const registry = new Registry(etcd, {
        prefix: `${ROOT}registry-visibility-${implementation}`,
      });
      const consumers = await Promise.all([1, 2, 3].map(() => registry.discover('api')));
      const until = (check: () => boolean) =>
        new Promise<void>((resolve) => {
          const poll = () => (check() ? resolve() : setImmediate(poll));
          poll();
        });
      return async (i) => {
        const id = `i${i}`;
        const registration = await registry.register(
          'api',
          { id, address: '10.0.0.1', port: 8080 },
          { session },
        );
        await until(() => consumers.every((c) => c.get(id) !== undefined));
        await registration.deregister();
        await until(() => consumers.every((c) => c.get(id) === undefined));
      };
    },
  },
};

/** Lease TTL of the failover workload: how long a dead leader blocks the next. */
const FAILOVER_TTL = 2;

/**
 * Leader failover: A leads, B waits in the same election; A dies without
 * resigning (its lease is no longer renewed, as when its process is killed)
 * and the operation lasts until B leads. Bounded below by the TTL.
 */
const electionFailover: Workload = {
  name: 'election-failover',
  title: `leader stops renewing (TTL ${FAILOVER_TTL} s) → next candidate leads`,
  concurrency: 1,
  warmupOps: 1,
  prepare: {
    etcdkit: async (etcd, { implementation }) => {
      const { Election } = await import('@etcdkit/election');
      return async (i) => {
        const name = `${ROOT}failover/${implementation}-${i}`;
        const a = await etcd.session({ ttl: FAILOVER_TTL });
        const b = await etcd.session({ ttl: FAILOVER_TTL });
        await new Election(a, name).campaign('a');
        const next = new Election(b, name).campaign('b');
        a.orphan(); // dies: keepalives stop, the lease expires by itself
        const leadership = await next;
        await leadership.resign();
        await b.close();
      };
    },
    etcd3:
      async (etcd, { implementation }) =>
      async (i) => {
        const race = etcd.election(`${ROOT}failover/${implementation}-${i}`, FAILOVER_TTL);
        const a = race.campaign('a');
        await a.wait();
        const b = race.campaign('b');
        // etcd3 has no way to let a campaign die without resigning; stopping its
        // lease's keepalives (Lease.release) is what a killed process amounts to.
        (a as unknown as { lease: { release(): void } }).lease.release();
        await b.wait();
        await b.resign();
      },
  },
};

export const WORKLOADS: readonly Workload[] = [
  put('put-seq', 1),
  put('put-64', 64),
  get('get-seq', 1),
  get('get-64', 64),
  readdir,
  txnCas('txn-cas', 1),
  txnCas('txn-64', 64),
  lease,
  watch('watch-seq', 1),
  watch('watch-64', 64),
  lock,
  election,
  lockContended,
  registrySync,
  registrySync5000,
  registryVisibility,
  electionFailover,
];

export function workloadByName(name: string): Workload {
  const found = WORKLOADS.find((w) => w.name === name);
  if (!found) throw new Error(`unknown workload ${name}`);
  return found;
}
