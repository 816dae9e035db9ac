/**
 * A `Membership` is one process's place in a group: the key `<group>/<id>`
 * on a session's lease, so it lasts exactly as long as the lease.
 *
 * How it works: joining creates the key in a txn that compares its create
 * revision with 0. If the key exists, another member holds the ID and the
 * join is refused with `MemberExistsError`; only a key on this session's own
 * lease that no membership of this process claims is taken back (a create
 * whose answer was lost and that the client retried, or a process resumed on
 * its lease). When the session is lost (the lease expired, was revoked, or
 * its renewal can no longer be proven) the membership is lost: `signal`
 * aborts and `lost` is emitted. The session decides that a tenth of the TTL
 * before the lease can expire in etcd, so a member counts itself out before
 * the others count it out. `leave()` revokes a session of its own, or
 * deletes the key from a session it was given.
 */
import {
  type CallOptions,
  Compare,
  type Etcd,
  leaseHex,
  Op,
  type Session,
  type SessionExpiredError,
} from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import { MemberExistsError, MembershipEndedError } from './errors.js';
import { type Capabilities, encodeMember } from './member.js';

export interface MembershipEvents {
  /** The lease was lost (or can no longer be proven alive): this process is no member any more. */
  lost: [error: SessionExpiredError];
  /** `leave()` removed the member. */
  left: [];
}

/** Keys joined on each session, across every group of the process. */
const claimed = new WeakMap<Session, Set<string>>();

/** Attempts of a join whose key vanished between the create and the read. */
const JOIN_ATTEMPTS = 3;

/** @internal what `Group.join()` hands to `Membership.create()`. */
export interface MembershipInit {
  client: Etcd<unknown>;
  group: string;
  key: string;
  id: string;
  capabilities: Capabilities;
  session: Session;
  /** The membership made the session and closes it on leave. */
  owned: boolean;
}

export class Membership extends EventEmitter<MembershipEvents> implements AsyncDisposable {
  /** The group's name. */
  readonly group: string;
  /** The member's ID. */
  readonly id: string;
  /** The member's key, `<group>/<id>`, relative to the client's keyPrefix. */
  readonly key: string;
  readonly capabilities: Capabilities;
  /** The lease the key lives on. */
  readonly lease: bigint;
  /** The revision the member joined at (its key's create revision). */
  readonly createRevision: bigint;
  readonly #client: Etcd<unknown>;
  readonly #session: Session;
  readonly #owned: boolean;
  readonly #abort = new AbortController();
  #leaving: Promise<void> | undefined;
  readonly #onSessionEnd = () => {
    const reason = this.#session.signal.reason as SessionExpiredError;
    if (!this.#end(reason)) return;
    // Closed by its owner (or with its client): the key went with it, but nothing was lost.
    if (this.#session.state === 'lost') this.emit('lost', reason);
  };

  private constructor(init: MembershipInit, createRevision: bigint) {
    super();
    this.#client = init.client;
    this.#session = init.session;
    this.#owned = init.owned;
    this.group = init.group;
    this.id = init.id;
    this.key = init.key;
    this.capabilities = init.capabilities;
    this.lease = init.session.lease;
    this.createRevision = createRevision;
    init.session.signal.addEventListener('abort', this.#onSessionEnd, { once: true });
    if (init.session.signal.aborted) this.#onSessionEnd();
  }

  /** @internal use `group.join()`: writes the key and resolves once it is stored. */
  static async create(init: MembershipInit, call: CallOptions): Promise<Membership> {
    const { session, key } = init;
    let keys = claimed.get(session);
    if (!keys) {
      keys = new Set();
      claimed.set(session, keys);
    }
    if (keys.has(key)) {
      throw new MemberExistsError(
        init.id,
        session.lease,
        `${init.id} is a member of ${init.group} on this session already`,
      );
    }
    keys.add(key);
    try {
      const revision = await createKey(init, call);
      session.signal.throwIfAborted();
      return new Membership(init, revision);
    } catch (err) {
      keys.delete(key);
      if (init.owned) await session.close().catch(() => undefined);
      throw err;
    }
  }

  /** Aborts when the membership ends: the lease lost, or `leave()`. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True until the membership is lost or left. */
  get active(): boolean {
    return !this.#abort.signal.aborted;
  }

  /**
   * Leaves the group: the key is deleted (an own session's lease is revoked),
   * so every view sees the member go at once. Idempotent; a failed attempt
   * may be tried again, and otherwise the key goes when the lease expires.
   */
  leave(options: CallOptions = {}): Promise<void> {
    this.#leaving ??= this.#leave(options).catch((err: unknown) => {
      this.#leaving = undefined;
      throw err;
    });
    return this.#leaving;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.leave();
  }

  async #leave(options: CallOptions): Promise<void> {
    const left = this.#end(new MembershipEndedError(`${this.id} left ${this.group}`));
    if (this.#owned) {
      await this.#session.close(options);
    } else {
      await this.#client
        .txn()
        .if(
          Compare.lease(this.key, '=', this.lease),
          Compare.createRevision(this.key, '=', this.createRevision),
        )
        .success(Op.delete(this.key))
        .commit(options);
    }
    if (left) this.emit('left');
  }

  /** Ends the membership once; returns whether this call ended it. */
  #end(reason: Error): boolean {
    if (this.#abort.signal.aborted) return false;
    this.#abort.abort(reason);
    this.#session.signal.removeEventListener('abort', this.#onSessionEnd);
    claimed.get(this.#session)?.delete(this.key);
    return true;
  }
}

/** Creates the member's key, or takes back one on the session's own lease; returns its create revision. */
async function createKey(init: MembershipInit, call: CallOptions): Promise<bigint> {
  const { client, session, key } = init;
  const value = encodeMember(init.capabilities);
  for (let attempt = 1; ; attempt++) {
    const r = await client
      .txn()
      .if(Compare.createRevision(key, '=', 0))
      .success(Op.putRaw(key, value, { lease: session.lease }))
      .failure(Op.get(key))
      .commit(call);
    if (r.succeeded) return r.revision;
    const read = r.results[0];
    const kv = read?.type === 'range' ? read.kvs[0] : undefined;
    if (kv && kv.lease !== session.lease) {
      throw new MemberExistsError(
        init.id,
        kv.lease,
        `${init.id} is a member of ${init.group} already (lease ${leaseHex(kv.lease)})`,
      );
    }
    if (kv) {
      // Ours: write the capabilities of this join, as long as it is the same key.
      const put = await client
        .txn()
        .if(Compare.createRevision(key, '=', kv.createRevision))
        .success(Op.putRaw(key, value, { lease: session.lease }))
        .commit(call);
      if (put.succeeded) return kv.createRevision;
    }
    // The key went between the create and the read: try again.
    if (attempt >= JOIN_ATTEMPTS) {
      throw new MemberExistsError(
        init.id,
        0n,
        `${init.id} kept changing in ${init.group} while joining`,
      );
    }
  }
}
