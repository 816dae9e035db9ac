/**
 * Workloads of the recipes built on the client: locks, elections, the
 * service registry and leader failover. etcd3 runs those it has an equivalent
 * for; the raw loop has none.
 */
import { LEASE_TTL, ROOT, type Workload } from './workload-common.js';

/** An uncontended lock and release, each implementation on its own lock. */
export const lock: Workload = {
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
export const election: Workload = {
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
export const lockContended: Workload = {
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
export const registrySync: Workload = {
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
export const registrySync5000: Workload = {
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
export const registryVisibility: Workload = {
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
export const electionFailover: Workload = {
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
