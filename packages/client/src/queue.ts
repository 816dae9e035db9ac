/**
 * The waiting queue behind locks, semaphores and elections, as in etcd's Go
 * `concurrency` package, so they interoperate with Go services and etcdctl.
 *
 * How it works: each contender owns one key, `<prefix><lease ID in hex>`,
 * attached to its session's lease. It is created by a txn that compares
 * `create_revision == 0` and, in the same round trip, reads the oldest key
 * under the prefix: the head of the queue. Keys are ordered by create
 * revision. A contender holds its turn once no older key remains (fair FIFO);
 * it learns so from the client's shared view of the queue (`QueueView`), one
 * watch per client and prefix, whoever waits in it.
 */
import type { Etcd } from './client.js';
import type { KeyValue } from './key-value.js';
import { leaseHex } from './lease.js';
import { Compare, Op, type RangeOptions } from './ops.js';
import { QueueView } from './queue-view.js';

export interface QueueEntry<V> {
  /** The contender's key. */
  key: string;
  /** Its create revision: the position in the queue, and the fencing token of its holder. */
  createRevision: bigint;
  /** The store revision of the round trip that joined the queue. */
  revision: bigint;
  /** The head of the queue at that revision (this entry itself when it is first). */
  head: KeyValue<V> | undefined;
  /** The key already existed (the same lease joined before, e.g. after a restart). */
  existed: boolean;
  /** The key's current pair. */
  kv: KeyValue<V> | undefined;
}

const OLDEST_FIRST: RangeOptions = { sortTarget: 'createRevision', sortOrder: 'ascend', limit: 1 };

/** The key a lease holds in a queue: `<prefix><lease ID in lower-case hex>`, as etcd's Go client. */
export function queueKey(prefix: string, lease: bigint): string {
  return `${prefix}${leaseHex(lease)}`;
}

/**
 * Creates (or finds) `key` under `prefix`, attached to `lease`, and reads the
 * head, in one txn. `value` is stored as given: bytes, or UTF-8 text.
 */
export async function joinQueue<V>(
  etcd: Etcd<V>,
  prefix: string,
  key: string,
  lease: bigint,
  value: Uint8Array | string = '',
  options: { signal?: AbortSignal | undefined } = {},
): Promise<QueueEntry<V>> {
  const put = Op.putRaw(key, value, { lease });
  const r = await etcd
    .txn()
    .if(Compare.createRevision(key, '=', 0n))
    .success(put, Op.readdir(prefix, OLDEST_FIRST))
    .failure(Op.get(key), Op.readdir(prefix, OLDEST_FIRST))
    .commit({ signal: options.signal });
  const [first, headRead] = r.results;
  const head = headRead?.type === 'range' ? headRead.kvs[0] : undefined;
  if (r.succeeded) {
    // The put's revision is the txn's revision: that is the new key's create revision.
    return {
      key,
      createRevision: r.revision,
      revision: r.revision,
      head,
      existed: false,
      kv: undefined,
    };
  }
  const kv = first?.type === 'range' ? first.kvs[0] : undefined;
  return {
    key,
    createRevision: kv?.createRevision ?? 0n,
    revision: r.revision,
    head,
    existed: true,
    kv,
  };
}

/** Where a queue entry stands once its turn has come. */
export interface Turn {
  /** The store revision at which its turn came. */
  revision: bigint;
  /** The entry's own key at that revision; undefined if it is gone (its lease ended, or someone deleted it). */
  own: KeyValue<unknown> | undefined;
}

export interface TurnOptions {
  signal?: AbortSignal | undefined;
  /**
   * The prefix whose view is watched, when the entry's own key is not under
   * `prefix` (a reader of an RWMutex waits for writers only). Default: `prefix`.
   */
  scope?: string | undefined;
  /** How many older entries may remain (a semaphore's permits). Default: 1, none older. */
  permits?: number | undefined;
  /**
   * How much each older entry counts against `permits` (a semaphore holder's
   * permits); at least 1 for every entry. Default: 1 each.
   */
  weight?: ((kv: KeyValue<unknown>) => number) | undefined;
}

/**
 * Waits until fewer than `permits` keys under `prefix` were created before
 * `createRevision` (with one permit: until the entry `ownKey` is at the head
 * of the queue), or until the entry's own key is gone, and returns the own key
 * as it was at that revision.
 *
 * It waits on the client's shared view of the queue (`QueueView`), so waiting
 * costs no watch or read of its own. When the view says the turn has come
 * because holders of this client released their keys (`releasing`), the turn
 * is taken at once: a hand-off costs one event delivery. When a key ahead
 * went otherwise (another process released it, it was deleted from outside,
 * its lease ended), one read confirms the turn, at a revision at least as new
 * as any the cluster has committed, and a holder whose key was deleted from
 * outside learns of it from that delete's event one round trip before its
 * successor can act: such a hand-off costs one event delivery and one round
 * trip.
 */
export async function waitForTurn(
  etcd: Etcd<unknown>,
  prefix: string,
  ownKey: string,
  createRevision: bigint,
  options: TurnOptions = {},
): Promise<Turn> {
  const permits = options.permits ?? 1;
  const view = QueueView.use(etcd, options.scope ?? prefix);
  try {
    for (;;) {
      const turn = await view.until((state): Turn | undefined => {
        // Until the view has seen the entry's own creation, it cannot judge it.
        if (state.revision < createRevision) return undefined;
        const own = state.get(ownKey);
        if (own?.createRevision === createRevision) {
          const older = state.countOlder(createRevision, prefix, permits, options.weight);
          if (older >= permits) return undefined;
        }
        return { revision: state.revision, own };
      }, options.signal);
      if (!turn.own || view.onlyReleasedSince(createRevision)) return turn;
      const confirmed = await readTurn(etcd, prefix, ownKey, createRevision, permits, options);
      // Whoever acts after this read acts a round trip after every delete the view had seen.
      view.settled(turn.revision);
      if (confirmed) return confirmed;
    }
  } finally {
    view.release();
  }
}

/** One linearizable read of the keys ahead (up to `permits`) and of the own key; undefined while it must wait. */
async function readTurn(
  etcd: Etcd<unknown>,
  prefix: string,
  ownKey: string,
  createRevision: bigint,
  permits: number,
  options: TurnOptions,
): Promise<Turn | undefined> {
  // etcd sorts and filters by revision before it applies `limit`: the oldest
  // `permits` of the keys ahead come back, enough to count them against
  // `permits`, as each counts at least 1.
  const weight = options.weight;
  const r = await etcd
    .txn()
    .success(
      Op.readdir(prefix, {
        sortTarget: 'createRevision',
        sortOrder: 'ascend',
        limit: permits,
        keysOnly: weight === undefined,
        maxCreateRevision: createRevision - 1n,
      }),
      Op.get(ownKey),
    )
    .commit({ signal: options.signal });
  const [older, mine] = r.results;
  const kvs = older?.type === 'range' ? older.kvs : [];
  const ahead = weight ? kvs.reduce((sum, kv) => sum + weight(kv), 0) : kvs.length;
  const own = mine?.type === 'range' ? mine.kvs[0] : undefined;
  if (own?.createRevision === createRevision && ahead >= permits) return undefined;
  return { revision: r.revision, own };
}

/**
 * Tells the client's shared view of `scope`, if it has one, that the holder
 * of `key` (created at `createRevision`) is giving it up: the next in line of
 * this client then takes its turn from the delete's event, with no read.
 * Call it before the delete is sent.
 */
export function releasing(
  etcd: Etcd<unknown>,
  scope: string,
  key: string,
  createRevision: bigint,
): void {
  QueueView.existing(etcd, scope)?.releasing(key, createRevision);
}

/**
 * Resolves when `key`, created at `createRevision`, is gone (deleted, or
 * created anew) on the client's shared view of `scope`, with the revision at
 * which it was seen gone. Holders of locks and leaderships learn of a loss so.
 */
export async function waitForLoss(
  etcd: Etcd<unknown>,
  scope: string,
  key: string,
  createRevision: bigint,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<bigint> {
  const view = QueueView.use(etcd, scope);
  try {
    return await view.until((state) => {
      if (state.revision < createRevision) return undefined;
      return state.get(key)?.createRevision === createRevision ? undefined : state.revision;
    }, options.signal);
  } finally {
    view.release();
  }
}
