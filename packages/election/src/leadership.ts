/**
 * A `Leadership` is the handle of a won campaign: the leader's key, its
 * fencing token, and a signal that aborts when leading ends.
 *
 * How it works: leading means owning the oldest key under the election's
 * prefix. That ends when the session's lease is (or may be) lost, or when the
 * key is deleted by anyone: a resign, an expiry etcd saw first, an operator.
 * The client's shared view of the election's prefix (`QueueView`, the one
 * watch that also told the candidate its turn had come) catches the latter as
 * soon as the delete's event arrives, and its watcher resumes after
 * reconnects without a gap. Every write of the leader (proclaim, resign,
 * and the caller's writes guarded by `guard()`) compares the key's create
 * revision with the token, so a replica that only believes it leads changes
 * nothing.
 */
import {
  type CallOptions,
  ClientClosedError,
  Compare,
  type Etcd,
  Op,
  releasing,
  type Session,
  waitForLoss,
} from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import { NotLeaderError } from './errors.js';
import { type ElectionValue, valueBytes } from './leader-info.js';

export interface LeadershipEvents {
  /** The session's keepalive is overdue: leading may soon end. Pause work that must not run unprotected. */
  suspended: [];
  /** The keepalive was answered again after `suspended`. */
  resumed: [];
  /** Leading ended without a resign: the session was lost or the key deleted. */
  lost: [error: Error];
}

/** @internal what `Election` hands to a new `Leadership`. */
export interface LeadershipInit {
  client: Etcd<unknown>;
  session: Session;
  key: string;
  token: bigint;
  /** The election's prefix, whose shared view follows the key. */
  prefix: string;
  /** Called once when leading ends, however it ends. */
  onEnd: () => void;
  /**
   * Ends leading when it aborts, as a resign does, but leaves the key to
   * `resign()`: the work is told to stop, and the next leader may start only
   * once it has. (Used by `Election.run`.)
   */
  stop?: AbortSignal | undefined;
}

export class Leadership extends EventEmitter<LeadershipEvents> implements AsyncDisposable {
  /** The leader's key, `<name>/<lease ID in hex>`. */
  readonly key: string;
  /** The key's create revision: strictly greater than every earlier leader's token. */
  readonly token: bigint;
  /** The lease the key is attached to (the session's). */
  readonly lease: bigint;
  readonly #client: Etcd<unknown>;
  readonly #session: Session;
  /** The election's prefix, whose shared view follows the key. */
  readonly #prefix: string;
  readonly #abort = new AbortController();
  readonly #stopWatch = new AbortController();
  readonly #onEnd: () => void;
  readonly #stop: AbortSignal | undefined;
  readonly #onStop = () => this.#end(this.#stop?.reason as Error, false);
  readonly #onSessionLost = () => {
    const reason = this.#session.signal.reason as Error;
    // Closed by its owner (or with its client): leading ends, but nothing was lost.
    if (this.#session.state === 'closed') {
      if (this.leading) this.#end(reason);
    } else this.#lose(reason);
  };
  #lost: Error | undefined;
  readonly #onSuspended = () => this.emit('suspended');
  readonly #onResumed = () => this.emit('resumed');
  #resigned = false;
  #deleteSent = false;
  #resigning: Promise<void> | undefined;

  /** @internal returned by `Election.campaign()` and `Election.resume()`. */
  constructor(init: LeadershipInit) {
    super();
    this.#client = init.client;
    this.#session = init.session;
    this.key = init.key;
    this.token = init.token;
    this.lease = init.session.lease;
    this.#prefix = init.prefix;
    this.#onEnd = init.onEnd;
    this.#stop = init.stop;
    if (init.session.signal.aborted) {
      this.#onSessionLost();
      return;
    }
    if (init.stop?.aborted) {
      this.#onStop();
      return;
    }
    init.session.signal.addEventListener('abort', this.#onSessionLost, { once: true });
    init.stop?.addEventListener('abort', this.#onStop, { once: true });
    init.session.on('suspended', this.#onSuspended);
    init.session.on('resumed', this.#onResumed);
    void this.#watchKey(init.prefix);
  }

  /** Aborts when leading ends: session lost, key deleted, resigned, or (under `Election.run`) its signal aborted. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Whether the session's keepalive is overdue right now (see `suspended`). */
  get suspended(): boolean {
    return this.leading && this.#session.suspended;
  }

  /** True until leading ends. */
  get leading(): boolean {
    return !this.#abort.signal.aborted;
  }

  /**
   * A comparison that holds only while this leadership's key exists with its
   * token: add it to a txn (`txn().if(leadership.guard())`) to fence a write.
   */
  guard(): Compare {
    return Compare.createRevision(this.key, '=', this.token);
  }

  /** Replaces the leader's value, only if this replica still leads. */
  async proclaim(value: ElectionValue, options: CallOptions = {}): Promise<void> {
    const bytes = valueBytes(value);
    if (!this.leading) throw this.#notLeader('proclaim');
    const r = await this.#client
      .txn()
      .if(this.guard())
      .success(Op.putRaw(this.key, bytes, { lease: this.lease }))
      .commit(options);
    if (!r.succeeded) {
      const err = new NotLeaderError(`${this.key} (token ${this.token}) no longer exists`);
      this.#lose(err);
      throw err;
    }
  }

  /**
   * Gives up leading: deletes the key if it still has this token, so the next
   * candidate takes over at once. Resolves again on later calls; rejects with
   * NotLeaderError if leading had already been lost.
   */
  resign(options: CallOptions = {}): Promise<void> {
    this.#resigning ??= this.#resign(options).catch((err: unknown) => {
      // A failed request may be tried again; a NotLeaderError is final.
      if (!(err instanceof NotLeaderError)) this.#resigning = undefined;
      throw err;
    });
    return this.#resigning;
  }

  async #resign(options: CallOptions): Promise<void> {
    const lost = this.#lost;
    if (!this.#resigned) {
      this.#resigned = true;
      if (!lost) this.#end(new NotLeaderError(`${this.key} resigned`));
    }
    // The next candidate here may take over from the delete alone: this one has stopped leading.
    if (!lost) releasing(this.#client, this.#prefix, this.key, this.token);
    let deleted: boolean;
    try {
      const r = await this.#client
        .txn()
        .if(this.guard())
        .success(Op.delete(this.key))
        .commit(options);
      deleted = r.succeeded;
    } catch (err) {
      // Lost already: the delete was only a courtesy to the next candidate.
      if (lost) throw this.#notLeader('resign');
      this.#deleteSent = true;
      throw err;
    }
    if (lost) throw this.#notLeader('resign');
    // After a failed attempt the key may be gone because that attempt did delete it.
    if (!deleted && !this.#deleteSent)
      throw new NotLeaderError(`${this.key} (token ${this.token}) no longer exists`);
  }

  /** Resigns; a leadership already lost is simply let go. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign().catch((err: unknown) => {
      if (!(err instanceof NotLeaderError)) throw err;
    });
  }

  #notLeader(what: string): NotLeaderError {
    return new NotLeaderError(`${what}: ${this.key} (token ${this.token}) no longer leads`, {
      cause: this.#lost ?? this.#abort.signal.reason,
    });
  }

  /** Follows the key on the client's shared view of the election until leading ends. */
  async #watchKey(prefix: string): Promise<void> {
    const signal = this.#stopWatch.signal;
    try {
      await waitForLoss(this.#client, prefix, this.key, this.token, { signal });
      this.#lose(new NotLeaderError(`${this.key} (token ${this.token}) was deleted`));
    } catch (err) {
      // A closed client closes the session too, which ends leading without a loss.
      if (signal.aborted || err instanceof ClientClosedError) return;
      this.#lose(new NotLeaderError(`${this.key} can no longer be watched`, { cause: err }));
    }
  }

  #lose(error: Error): void {
    if (!this.leading) return;
    this.#lost = error;
    this.#end(error);
    this.emit('lost', error);
  }

  /** Ends leading; `keyGone` false keeps the key claimed until a resign deletes it. */
  #end(reason: Error, keyGone = true): void {
    if (this.leading) {
      this.#abort.abort(reason);
      this.#stopWatch.abort(reason);
      this.#session.signal.removeEventListener('abort', this.#onSessionLost);
      this.#session.off('suspended', this.#onSuspended);
      this.#session.off('resumed', this.#onResumed);
      this.#stop?.removeEventListener('abort', this.#onStop);
    }
    if (keyGone) this.#onEnd();
  }
}
