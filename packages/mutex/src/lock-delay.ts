/**
 * Lock-delay, as Consul has it: after a holder's lock ends without a release
 * (its lease expired: a crash, a partition, a pause; or its key was deleted
 * from outside), nobody is granted the lock for a while, so that a holder
 * which has not noticed its loss yet can stop before the next one starts.
 *
 * How it works: on taking the lock, a holder writes the record
 * `<name>.lock-delay`, with no lease, naming its queue key, token and delay,
 * in a txn guarded by its own key. Its release deletes the record in the same
 * txn as the key. A lease expiry cannot delete a key without a lease, so a
 * next holder that finds someone else's record knows the lock ended without a
 * release. It replaces the record, guarded by its mod revision, with a delay
 * marker on a new lease whose TTL is that holder's delay; etcd deletes the
 * marker when that lease expires. A contender whose turn has come waits until
 * no marker is left and only then writes its own record and holds the lock.
 * Every process that uses the lock with a lockDelay honours a marker, since
 * it lives in etcd.
 */
import {
  Compare,
  type KeyValue,
  Op,
  type OpResult,
  QueueView,
  type Session,
} from '@etcdkit/client';
import type { Held } from './contender.js';
import { LockTakenError } from './errors.js';

/** The longest lock-delay allowed, as in Consul: a longer one is more likely a mistake than a need. */
export const MAX_LOCK_DELAY_MS = 60_000;

/** What the record says, as JSON text: the holder, or the holder whose lock ended unreleased. */
interface DelayRecord {
  key: string;
  token: string;
  delayMs: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeRecord(kv: KeyValue<unknown>): Partial<DelayRecord> {
  try {
    const parsed: unknown = JSON.parse(decoder.decode(kv.valueBytes));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Partial<DelayRecord>) : {};
  } catch {
    return {};
  }
}

function kvOf(result: OpResult<unknown> | undefined): KeyValue<unknown> | undefined {
  return result?.type === 'range' ? result.kvs[0] : undefined;
}

function tokenOf(said: Partial<DelayRecord>): bigint | undefined {
  return typeof said.token === 'string' && /^\d+$/.test(said.token)
    ? BigInt(said.token)
    : undefined;
}

/** Where things stand when a contender looks: the record, and its own queue key. */
interface Look {
  revision: bigint;
  record: KeyValue<unknown> | undefined;
  own: KeyValue<unknown> | undefined;
}

export class LockDelay {
  /** The record's key, `<name>.lock-delay`: outside the queue `<name>/`, which etcdctl and Go share. */
  readonly key: string;
  /** The delay in ms; a marker lasts this long rounded up to whole seconds (etcd's lease TTLs). */
  readonly ms: number;

  constructor(name: string, ms: number) {
    this.key = `${name}.lock-delay`;
    this.ms = ms;
  }

  /**
   * Called when the turn of `ownKey` (created at `token`) has come: waits
   * out any delay, then records the holder. Returns the turn with what the
   * release must do; a turn without `own` if the key was lost meanwhile.
   * With `tryOnly`, a delay in force rejects with LockTakenError instead.
   */
  async enter(
    session: Session,
    ownKey: string,
    token: bigint,
    signal: AbortSignal,
    tryOnly: boolean,
  ): Promise<Held> {
    const client = session.client;
    let view: QueueView | undefined;
    try {
      // Not looked yet: the first try writes the record as if there were none,
      // and reads what is there if there was one.
      let look: Look | undefined;
      for (;;) {
        if (look && look.own?.createRevision !== token) {
          return { revision: look.revision, own: undefined };
        }
        const record = look?.record;
        if (!look || !record) {
          const r = await client
            .txn()
            .if(
              Compare.createRevision(this.key, '=', 0n),
              Compare.createRevision(ownKey, '=', token),
            )
            .success(Op.putRaw(this.key, this.#encode(ownKey, token)), Op.get(ownKey))
            .failure(Op.get(this.key), Op.get(ownKey))
            .commit({ signal });
          if (r.succeeded) return this.#held(r.revision, kvOf(r.results[1]), r.revision);
          look = { revision: r.revision, record: kvOf(r.results[0]), own: kvOf(r.results[1]) };
          continue;
        }
        const said = decodeRecord(record);
        if (record.lease !== 0n) {
          // A delay marker: etcd deletes it when its lease expires.
          if (tryOnly) {
            throw new LockTakenError(
              `${this.key}: the lock is in its lock-delay after ${said.key ?? 'a holder'} lost it`,
              said.key,
              tokenOf(said),
            );
          }
          view ??= QueueView.use(client, this.key);
          await view.until(
            (state) =>
              state.revision >= record.modRevision &&
              state.get(this.key)?.modRevision !== record.modRevision
                ? true
                : undefined,
            signal,
          );
          look = await this.#look(session, ownKey, signal);
          continue;
        }
        // Written after an answer was lost: the record is this holder's own already.
        if (said.key === ownKey && said.token === String(token)) {
          return this.#held(look.revision, look.own, record.modRevision);
        }
        // Another holder's record, while no key older than this one is left in the
        // queue: that holder's lock ended without a release.
        await this.#startDelay(session, record, said, signal);
        look = await this.#look(session, ownKey, signal);
      }
    } finally {
      view?.release();
    }
  }

  #encode(key: string, token: bigint): string {
    return JSON.stringify({ key, token: String(token), delayMs: this.ms } satisfies DelayRecord);
  }

  /** The turn, and the release's delete of the record, guarded by its mod revision. */
  #held(revision: bigint, own: KeyValue<unknown> | undefined, recorded: bigint): Held {
    const forget = Op.txn([Compare.modRevision(this.key, '=', recorded)], [Op.delete(this.key)]);
    return { revision, own, releaseOps: [forget] };
  }

  async #look(session: Session, ownKey: string, signal: AbortSignal): Promise<Look> {
    const r = await session.client
      .txn()
      .success(Op.get(this.key), Op.get(ownKey))
      .commit({ signal });
    return { revision: r.revision, record: kvOf(r.results[0]), own: kvOf(r.results[1]) };
  }

  /**
   * Replaces an unreleased holder's record with a marker on a lease of that
   * holder's delay. A lease the marker did not get is revoked; one whose
   * txn's outcome is unknown is left to expire on its own, a delay later.
   */
  async #startDelay(
    session: Session,
    record: KeyValue<unknown>,
    said: Partial<DelayRecord>,
    signal: AbortSignal,
  ): Promise<void> {
    const client = session.client;
    const ms =
      typeof said.delayMs === 'number' && said.delayMs >= 0 && said.delayMs <= MAX_LOCK_DELAY_MS
        ? said.delayMs
        : this.ms;
    const lease = await client.grant(Math.max(1, Math.ceil(ms / 1000)), { signal });
    const marker = {
      key: typeof said.key === 'string' ? said.key : '',
      token: typeof said.token === 'string' ? said.token : '',
      delayMs: ms,
    } satisfies DelayRecord;
    const r = await client
      .txn()
      .if(Compare.modRevision(this.key, '=', record.modRevision))
      .success(Op.putRaw(this.key, JSON.stringify(marker), { lease: lease.id }))
      .commit({ signal });
    if (!r.succeeded) void client.revoke(lease.id).catch(() => undefined);
  }
}
