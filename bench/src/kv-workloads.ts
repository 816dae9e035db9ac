/**
 * Workloads of single key-value calls: put, get, readdir, compare-and-swap,
 * lease grant and revoke, watch delivery. Each is written once per
 * implementation with the same keys, value sizes and counts.
 */
import { IMPLEMENTATIONS, type Implementation } from './protocol.js';
import {
  countKvs,
  firstValue,
  frame,
  grantedLease,
  leaseGrantRequest,
  leaseRevokeRequest,
  pairs,
  putOp,
  putRequest,
  rangeOp,
  rangeRequest,
  txnRequest,
  txnSucceeded,
  valueEquals,
} from './raw-proto.js';
import {
  b64,
  keyOf,
  LEASE_TTL,
  ROOT,
  seedKeys,
  textValue,
  type Workload,
} from './workload-common.js';

/** Bytes of each value written by put and read by get. */
const VALUE_BYTES = 256;
/** Puts cycle over this many keys. */
const PUT_KEYS = 1000;
/** Gets cycle over this many keys (one per request in flight). */
const GET_KEYS = 64;
/** Keys under the readdir prefix, and the size of their values. */
const DIR_KEYS = 1000;
const DIR_VALUE_BYTES = 128;

/** Every result is stored here, so that none is left unread. */
export let sink: unknown;

/** The longest implementation name: keys that hold one are padded to it, to one length. */
const IMPL_WIDTH = Math.max(...IMPLEMENTATIONS.map((impl) => impl.length));

/** A key space of one implementation's own, for state that must not be shared; ends in `/`. */
function ownSpace(space: string, impl: Implementation): string {
  return `${ROOT}${space}/${impl.padEnd(IMPL_WIDTH, '_')}/`;
}

export function put(name: string, concurrency: number): Workload {
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
      'raw-grpc': async (grpc) => {
        const requests = keys.map((k) => frame(putRequest(k, value)));
        return async (i) => {
          sink = await grpc.call('KV/Put', requests[i % PUT_KEYS]!);
        };
      },
    },
  };
}

export function get(name: string, concurrency: number): Workload {
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
      'raw-grpc': async (grpc) => {
        const requests = keys.map((k) => frame(rangeRequest(k)));
        return async (i) => {
          sink = await grpc.call('KV/Range', requests[i % GET_KEYS]!);
        };
      },
    },
  };
}

const DIR = `${ROOT}dir/`;

export const readdir: Workload = {
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
    // Decodes every pair into the same key → value object as etcdkit and etcd3
    // build: a client that reads a directory reads its keys and values.
    'raw-grpc': async (grpc) => {
      const request = frame(rangeRequest(DIR, `${ROOT}dir0`));
      const check = countKvs(await grpc.call('KV/Range', request));
      if (check !== DIR_KEYS) throw new Error(`readdir saw ${check} keys`);
      return async () => {
        sink = pairs(await grpc.call('KV/Range', request));
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
  return `${ownSpace('cas', impl)}${String(slot).padStart(2, '0')}`;
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
export function txnCas(name: string, concurrency: number): Workload {
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
      'raw-grpc': async (grpc, { implementation }) => {
        const keys = slots.map((slot) => casKey(implementation, slot));
        const read = async (key: string) =>
          Number(firstValue(await grpc.call('KV/Range', frame(rangeRequest(key)))));
        const counters = new Counters(await Promise.all(keys.map(read)));
        // The failure branch is encoded once; the compare and the put carry the counters.
        const reads = keys.map((key) => rangeOp(rangeRequest(key)));
        return () =>
          counters.use(async (slot, n) => {
            const key = keys[slot]!;
            const request = txnRequest(
              [valueEquals(key, String(n))],
              [putOp(putRequest(key, String(n + 1)))],
              [reads[slot]!],
            );
            const answer = await grpc.call('KV/Txn', frame(request));
            if (!txnSucceeded(answer)) throw new Error('compare-and-swap lost');
          });
      },
    },
  };
}

/**
 * Grant then revoke. etcd3's `lease()` keeps a lease alive by default; it is
 * created with `autoKeepAlive: false`, so both clients send exactly two calls.
 */
export const lease: Workload = {
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
    // The lease ID goes from the grant's answer to the revoke as the bytes of its varint.
    'raw-grpc': async (grpc) => {
      const grant = frame(leaseGrantRequest(LEASE_TTL));
      return async () => {
        const id = grantedLease(await grpc.call('Lease/LeaseGrant', grant));
        if (id === undefined) throw new Error('the grant answered no lease ID');
        sink = await grpc.call('Lease/LeaseRevoke', frame(leaseRevokeRequest(id)));
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
export function watch(name: string, concurrency: number): Workload {
  // Each implementation watches a prefix of its own, so a put wakes only its own watcher.
  const space = (impl: Implementation) => {
    const prefix = ownSpace('watch', impl);
    const keys = Array.from({ length: 64 }, (_, n) => `${prefix}${String(n).padStart(4, '0')}`);
    return { prefix, keys };
  };
  return {
    name,
    title: 'put → event delivered to a prefix watcher',
    concurrency,
    prepare: {
      etcdkit: async (etcd, { implementation }) => {
        const { prefix, keys } = space(implementation);
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
        const { prefix, keys } = space(implementation);
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
      // One Watch stream; a put goes as a unary call on the same session.
      'raw-grpc': async (grpc, { implementation }) => {
        const { prefix, keys } = space(implementation);
        const waiting = new Map<string, (failure?: Error) => void>();
        let broken: Error | undefined;
        const rangeEnd = `${prefix.slice(0, -1)}0`;
        await grpc.watch(
          prefix,
          rangeEnd,
          (value) => waiting.get(value)?.(),
          (reason) => {
            broken = reason;
            for (const settle of waiting.values()) settle(reason);
          },
        );
        return async (i) => {
          if (broken) throw broken;
          const value = `${implementation}-${i}`;
          const seen = new Promise<void>((resolve, reject) =>
            waiting.set(value, (failure) => (failure ? reject(failure) : resolve())),
          );
          try {
            await grpc.call('KV/Put', frame(putRequest(keys[i % keys.length]!, value)));
            await seen;
          } finally {
            waiting.delete(value);
          }
        };
      },
    },
  };
}
