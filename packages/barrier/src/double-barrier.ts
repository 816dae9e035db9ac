/**
 * A double barrier: `enter()` blocks until `count` participants have entered,
 * `leave()` blocks until all of them have left.
 *
 * How it works, as etcd's Go `contrib/recipes` DoubleBarrier, on the same
 * keys, so Go and etcdkit participants mix. Entering creates a unique key
 * `<key>/waiters/<n>` on the session's lease and, in the same txn, counts
 * the keys there. The participant that makes the count puts `<key>/ready`;
 * the others wait for a put of it after their own entry. Leaving: the
 * participant whose key is oldest (lowest mod revision) waits until the
 * newest key is gone, again and again; each other one deletes its key and
 * waits until the oldest is gone. Whoever finds itself alone deletes
 * `ready` and its own key. A participant that dies loses its key with its
 * lease, so in `leave()` the others go on once its TTL has passed.
 */
import {
  Compare,
  checkOptions,
  type Etcd,
  InvalidArgumentError,
  type KeyValue,
  keepTrying,
  Op,
  type Session,
  SessionExpiredError,
  untilAborted,
} from '@etcdkit/client';
import type { WaitOptions } from './barrier.js';
import { checkClient, checkKey, SIGNAL_ONLY } from './checks.js';
import { BarrierStateError, TooManyParticipantsError } from './errors.js';
import { viewKeys } from './key-view.js';
import { settle } from './settle.js';

export interface DoubleBarrierOptions {
  /**
   * The session whose lease keeps this participant's key. Default: the
   * client's shared session. Its TTL is how long a participant that died
   * holds up the others in `leave()`.
   */
  session?: Session | undefined;
}

/** This participant's key while it is entered. */
interface Entry {
  key: string;
  createRevision: bigint;
  session: Session;
}

/** Each try to withdraw a participant key is bounded so; tries go on with backoff. */
const WITHDRAW_TIMEOUT_MS = 5_000;

export class DoubleBarrier {
  /** The barrier's key; participants live under `<key>/waiters/`. */
  readonly key: string;
  /** How many participants `enter()` waits for. */
  readonly count: number;
  readonly #etcd: Etcd<unknown>;
  readonly #session: Session | undefined;
  readonly #waiters: string;
  readonly #ready: string;
  #state: 'out' | 'entering' | 'in' | 'leaving' = 'out';
  #entry: Entry | undefined;
  /** The key `#join` is creating: it may exist even when the join fails. */
  #joining: Pick<Entry, 'key' | 'session'> | undefined;

  constructor(etcd: Etcd<unknown>, key: string, count: number, options: DoubleBarrierOptions = {}) {
    this.#etcd = checkClient('DoubleBarrier', etcd);
    this.key = checkKey('double barrier', key);
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new InvalidArgumentError(
        `double barrier count must be a whole number >= 1, got ${count}`,
      );
    }
    this.count = count;
    checkOptions('new DoubleBarrier', options, new Set(['session']));
    this.#session = options.session;
    this.#waiters = `${key}/waiters/`;
    this.#ready = `${key}/ready`;
  }

  /** Whether this participant has entered and not yet left. */
  get entered(): boolean {
    return this.#state === 'in' || this.#state === 'leaving';
  }

  /** This participant's key while entered (or entering), else undefined. */
  get participantKey(): string | undefined {
    return this.#entry?.key;
  }

  /**
   * Enters, and resolves once `count` participants have entered. Rejects with
   * TooManyParticipantsError if more than `count` are in (the key is then
   * withdrawn), with SessionExpiredError if the session's lease is lost
   * meanwhile, or with `signal.reason`; in each case this participant is out
   * again. A participant that dies while the others wait here takes its key
   * with it: they keep waiting until enough participants have entered.
   */
  async enter(options: WaitOptions = {}): Promise<void> {
    checkOptions('enter', options, SIGNAL_ONLY);
    if (this.#state !== 'out') {
      throw new BarrierStateError(`enter: the double barrier ${this.key} is entered already`);
    }
    this.#state = 'entering';
    const { signal } = options;
    let entry: Entry | undefined;
    try {
      signal?.throwIfAborted();
      const session =
        this.#session ?? (await untilAborted(this.#etcd.sharedSession(), signal ?? neverAborts));
      if (!session.alive) throw lostSession();
      const bounded = signal ? AbortSignal.any([signal, session.signal]) : session.signal;
      const joined = await this.#join(session, bounded);
      entry = joined.entry;
      this.#entry = entry;
      this.#joining = undefined;
      if (joined.count > this.count) {
        throw new TooManyParticipantsError(this.key, joined.count, this.count);
      }
      if (joined.count === this.count) {
        const put = this.#etcd.txn().success(Op.putRaw(this.#ready, ''));
        await settle(() => put.commit({ signal: bounded }), bounded);
      } else {
        await this.#awaitReady(entry.createRevision, bounded);
      }
      this.#state = 'in';
    } catch (err) {
      const created = entry ?? this.#joining;
      if (created) void this.#withdraw(created);
      this.#entry = undefined;
      this.#joining = undefined;
      this.#state = 'out';
      throw reasonFor(err, signal, entry?.session);
    }
  }

  /**
   * Leaves, and resolves once every participant has left (or lost its lease).
   * Rejects with SessionExpiredError if this participant's lease is lost
   * meanwhile, or with `signal.reason`; its key is then withdrawn, so it
   * holds up no one, and it is out.
   */
  async leave(options: WaitOptions = {}): Promise<void> {
    checkOptions('leave', options, SIGNAL_ONLY);
    const entry = this.#entry;
    if (this.#state !== 'in' || !entry) {
      throw new BarrierStateError(`leave: the double barrier ${this.key} is not entered`);
    }
    this.#state = 'leaving';
    const { signal } = options;
    const bounded = signal ? AbortSignal.any([signal, entry.session.signal]) : entry.session.signal;
    try {
      await this.#awaitAllLeft(entry, bounded);
    } catch (err) {
      void this.#withdraw(entry);
      throw reasonFor(err, signal, entry.session);
    } finally {
      this.#entry = undefined;
      this.#state = 'out';
    }
  }

  /** Withdraws this participant's key if it is in, without waiting for anyone. */
  async [Symbol.asyncDispose](): Promise<void> {
    const entry = this.#entry;
    if (!entry || this.#state !== 'in') return;
    this.#entry = undefined;
    this.#state = 'out';
    await this.#withdraw(entry);
  }

  /**
   * Creates a new participant key and counts the keys there, in one txn.
   * An attempt whose answer was lost is sent again for the same key: if the
   * key is then found on this session's lease, the lost attempt created it,
   * and the count is read as of its creation.
   */
  async #join(session: Session, signal: AbortSignal): Promise<{ entry: Entry; count: number }> {
    for (;;) {
      const key = `${this.#waiters}${uniqueNumber()}`;
      this.#joining = { key, session };
      const r = await settle(
        () =>
          this.#etcd
            .txn()
            .if(Compare.createRevision(key, '=', 0n))
            .success(
              Op.putRaw(key, '', { lease: session.lease }),
              Op.readdir(this.#waiters, { countOnly: true }),
            )
            .failure(Op.get(key))
            .commit({ signal }),
        signal,
      );
      const [first, second] = r.results;
      if (r.succeeded) {
        const count = second?.type === 'range' ? second.count : 0;
        return { entry: { key, createRevision: r.revision, session }, count };
      }
      const found = first?.type === 'range' ? first.kvs[0] : undefined;
      // Another participant's key of the same name: try another.
      if (found?.lease !== session.lease) continue;
      const counted = await this.#etcd.readdir(this.#waiters, {
        countOnly: true,
        revision: found.createRevision,
        signal,
      });
      return {
        entry: { key, createRevision: found.createRevision, session },
        count: counted.count,
      };
    }
  }

  /** Waits until `ready` has been put at or after `since`, this participant's entry. */
  async #awaitReady(since: bigint, signal: AbortSignal): Promise<void> {
    for await (const { kvs } of viewKeys(this.#etcd, this.#ready, false, signal)) {
      const ready = kvs.get(this.#ready);
      if (ready && ready.modRevision >= since) return;
    }
  }

  /**
   * Go's leave, step by step: each time the key waited for is gone, the
   * waiters are looked at again. The oldest waits for the newest; any other
   * deletes its own key and waits for the oldest; one alone ends the round.
   */
  async #awaitAllLeft(entry: Entry, signal: AbortSignal): Promise<void> {
    let awaited: KeyValue<unknown> | undefined;
    for await (const { kvs } of viewKeys(this.#etcd, this.#waiters, true, signal)) {
      if (awaited && kvs.get(awaited.key)?.createRevision === awaited.createRevision) continue;
      awaited = undefined;
      if (kvs.size === 0) return;
      if (kvs.size === 1) {
        const last = this.#etcd.txn().success(Op.delete(this.#ready), Op.delete(entry.key));
        await settle(() => last.commit({ signal }), signal);
        return;
      }
      let lowest: KeyValue<unknown> | undefined;
      let highest: KeyValue<unknown> | undefined;
      for (const kv of kvs.values()) {
        if (!lowest || kv.modRevision < lowest.modRevision) lowest = kv;
        if (!highest || kv.modRevision > highest.modRevision) highest = kv;
      }
      if (lowest!.key === entry.key) {
        awaited = highest;
        continue;
      }
      if (kvs.has(entry.key)) {
        const out = this.#etcd.txn().success(Op.delete(entry.key));
        await settle(() => out.commit({ signal }), signal);
      }
      awaited = lowest;
    }
  }

  /**
   * Deletes a participant key if it is on the session's lease (the names are
   * unique, so it is this participant's), tried until it works while the
   * session lives: a key left on a live lease would hold the others up.
   * Never rejects.
   */
  #withdraw(entry: Pick<Entry, 'key' | 'session'>): Promise<void> {
    const txn = this.#etcd
      .txn()
      .if(Compare.lease(entry.key, '=', entry.session.lease))
      .success(Op.delete(entry.key));
    return keepTrying(
      () => txn.commit({ timeout: WITHDRAW_TIMEOUT_MS }).then(() => true),
      entry.session.signal,
    );
  }
}

const neverAborts = new AbortController().signal;

function lostSession(): SessionExpiredError {
  return new SessionExpiredError('the session is closed or its lease was lost');
}

/** The caller's abort reason first, then a lost session, then what the call rejected with. */
function reasonFor(err: unknown, signal: AbortSignal | undefined, session?: Session): unknown {
  if (signal?.aborted) return signal.reason;
  if (session?.signal.aborted) return lostSession();
  return err;
}

let sequence = 0;

/** A number like Go's `time.Now().UnixNano()`, which Go participants use; a retry makes a new one. */
function uniqueNumber(): string {
  const nanos = BigInt(Date.now()) * 1_000_000n;
  sequence = (sequence + 1) % 1_000_000;
  return String(nanos + BigInt(sequence));
}
