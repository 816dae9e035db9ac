/**
 * `Election` elects one leader among replicas with the keys and algorithm of
 * etcd's Go `concurrency.Election`, so Go services and `etcdctl elect NAME`
 * take part in the same elections.
 *
 * How it works: a candidate puts `<name>/<lease ID in hex>` on its session's
 * lease, unless that key exists already (an earlier run on the same lease),
 * in which case it keeps the key and proclaims its new value on it. The
 * oldest key (lowest create revision) leads, and its create revision is the
 * fencing token. A candidate waits on the client's shared view of the
 * election's keys (one watch per client and prefix) until no older key is
 * left, then confirms with one linearizable read that none is and that its
 * own key outlived the wait. An aborted or failed campaign deletes its key in
 * the background, so no ghost candidate stays in line.
 */
import {
  type CallOptions,
  ClientClosedError,
  Compare,
  type Etcd,
  giveUpSignal,
  InvalidArgumentError,
  isClient,
  joinQueue,
  type KeyValue,
  keepTrying,
  leaseHex,
  Op,
  queueKey,
  Session,
  TimeoutError,
  untilAborted,
  waitForTurn,
} from '@etcdkit/client';
import { claim } from './campaigning.js';
import { checkOptions } from './check-options.js';
import { NotLeaderError } from './errors.js';
import {
  type Candidate,
  type ElectionValue,
  type LeaderInfo,
  sameBytes,
  toCandidate,
  valueBytes,
} from './leader-info.js';
import { Leadership } from './leadership.js';
import { observeLeader } from './observe.js';
import { type LeaderWork, type RunOptions, runElection, type Term } from './run.js';

export interface ElectionOptions {
  /**
   * The session whose lease holds this replica's key. Default: the client's
   * shared session (`client.sharedSession()`), taken anew at each campaign, so
   * a campaign after a lost session starts on a fresh lease.
   */
  session?: Session | undefined;
}

export interface CampaignOptions {
  /** Gives up the campaign: the candidate's key is deleted and the call rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Gives up after this many ms with TimeoutError, as `signal` would. Default: wait as long as it takes. */
  timeout?: number | undefined;
}

export interface ResumeOptions extends CallOptions {
  /** The token the leadership had before the restart; another one is a NotLeaderError. */
  token?: bigint | undefined;
}

export interface ObserveOptions {
  /** Ends the iteration: the pending `next()` rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

const ELECTION_OPTIONS = new Set(['session']);
const CAMPAIGN_OPTIONS = new Set(['signal', 'timeout']);
const RESUME_OPTIONS = new Set(['signal', 'timeout', 'token']);
const LEADER_OPTIONS = new Set(['signal', 'timeout']);
const OBSERVE_OPTIONS = new Set(['signal']);

export class Election {
  /** The election's name, as given; keys live under `<name>/`. */
  readonly name: string;
  /** `<name>/`, the prefix of every candidate's key. */
  readonly prefix: string;
  readonly #client: Etcd<unknown>;
  readonly #session: Session | undefined;

  /**
   * An election on `name`, kept by `session` (its lease holds this replica's
   * key), or by the client's shared session when a client is given.
   */
  constructor(target: Etcd<unknown> | Session, name: string, options: ElectionOptions = {}) {
    // Sessions by brand, clients by shape: two copies of the client package still work together.
    if (target instanceof Session) {
      if (options.session !== undefined) {
        throw new InvalidArgumentError('new Election(session, name): the session is given twice');
      }
      options = { ...options, session: target };
    }
    const client: Etcd<unknown> = target instanceof Session ? target.client : target;
    if (!isClient(client))
      throw new InvalidArgumentError('new Election(client, name): client must be an Etcd client');
    checkOptions('Election', options, ELECTION_OPTIONS);
    if (options.session !== undefined && !(options.session instanceof Session))
      throw new InvalidArgumentError('the session option must be a Session');
    if (typeof name !== 'string' || name.length === 0)
      throw new InvalidArgumentError('an election name is a non-empty string');
    if (name.endsWith('/')) {
      throw new InvalidArgumentError(
        `election name ${JSON.stringify(name)} ends with "/": keys are "<name>/<lease>", give the name without it`,
      );
    }
    this.#client = client;
    this.#session = options.session;
    this.name = name;
    this.prefix = `${name}/`;
  }

  /**
   * Resolves when this replica leads, with the handle of its leadership.
   * Waits as long as older candidates remain; rejects with the session's
   * SessionExpiredError if the lease is lost first.
   */
  async campaign(value: ElectionValue, options: CampaignOptions = {}): Promise<Leadership> {
    checkOptions('campaign', options, CAMPAIGN_OPTIONS);
    return (await this.#enter(value, options, undefined)).leadership;
  }

  /**
   * A campaign; for `run`, its leadership also ends (keeping its key until
   * resigned) when `forRun.stop` aborts, and a campaign that fails settles
   * only once its key is withdrawn.
   */
  async #enter(
    value: ElectionValue,
    options: CampaignOptions,
    forRun: { stop: AbortSignal } | undefined,
  ): Promise<Term> {
    const bytes = valueBytes(value);
    const { timeout } = options;
    if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0))
      throw new InvalidArgumentError('campaign: timeout must be a number of ms >= 0');
    const giveUp = giveUpSignal(options, (ms) => new TimeoutError(`not elected within ${ms} ms`));
    try {
      const { signal } = giveUp;
      signal.throwIfAborted();
      const session = await this.#sessionFor(signal);
      session.signal.throwIfAborted();
      const key = queueKey(this.prefix, session.lease);
      const release = claim(session, key, this.name);
      // A key being withdrawn stays claimed until it is gone, so no new campaign
      // of this session reuses the key meanwhile and sees it deleted.
      let withdrawing: Promise<void> | undefined;
      const releaseAfter = (withdrawal: Promise<void>) => {
        withdrawing = withdrawal.finally(release);
      };
      try {
        const leadership = await this.#campaign(session, key, bytes, signal, forRun?.stop, {
          release,
          releaseAfter,
        });
        return { leadership, session };
      } catch (err) {
        if (!withdrawing) release();
        else if (forRun) await withdrawing;
        throw err;
      }
    } finally {
      giveUp.dispose();
    }
  }

  async #campaign(
    session: Session,
    key: string,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
    stop: AbortSignal | undefined,
    claimed: { release: () => void; releaseAfter: (withdrawal: Promise<void>) => void },
  ): Promise<Leadership> {
    const { release, releaseAfter } = claimed;
    // Waiting also ends when the lease is lost: a key without a lease leads nothing.
    const wait = signal ? AbortSignal.any([signal, session.signal]) : session.signal;
    let token: bigint;
    let own: KeyValue<unknown> | undefined;
    let joining: Promise<bigint> | undefined;
    try {
      // The join runs to its end even when the caller gives up first, so the
      // withdrawal's delete cannot come before a create still on its way.
      joining = this.#join(session, key, bytes, session.signal);
      token = await untilAborted(joining, wait);
      // Waits on the shared view until nothing older is left, then confirms that and "still mine" in one read.
      ({ own } = await waitForTurn(this.#client, this.prefix, key, token, { signal: wait }));
    } catch (err) {
      // As Go's campaign resigns on cancel, and more: a campaign that did not
      // win leaves no candidate behind, or it would lead with nobody acting.
      // That goes on in the background, so giving up is prompt even when etcd hangs.
      const joined = joining?.then(
        () => undefined,
        () => undefined,
      );
      releaseAfter(Promise.resolve(joined).then(() => this.#withdraw(key, session)));
      throw wait.aborted ? wait.reason : err;
    }
    // The lease may have expired while waiting, taking the key with it.
    if (own?.createRevision !== token) {
      if (!session.alive) throw session.signal.reason;
      throw new NotLeaderError(`${key} was deleted while it waited to lead ${this.name}`);
    }
    if (!session.alive) {
      releaseAfter(this.#withdraw(key, session));
      throw session.signal.reason;
    }
    return new Leadership({
      client: this.#client,
      session,
      key,
      token,
      prefix: this.prefix,
      onEnd: release,
      stop,
    });
  }

  /** Creates the candidate's key, or reuses it with the new value. Returns its create revision. */
  async #join(session: Session, key: string, bytes: Uint8Array, signal: AbortSignal) {
    const entry = await joinQueue(this.#client, this.prefix, key, session.lease, bytes, { signal });
    if (!entry.existed) return entry.createRevision;
    const existing = entry.kv;
    if (!existing) throw new NotLeaderError(`${key} vanished while joining ${this.name}`);
    if (!sameBytes(existing.valueBytes, bytes)) {
      const p = await this.#client
        .txn()
        .if(Compare.createRevision(key, '=', existing.createRevision))
        .success(Op.putRaw(key, bytes, { lease: session.lease }))
        .commit({ signal });
      if (!p.succeeded) throw new NotLeaderError(`${key} vanished while joining ${this.name}`);
    }
    return existing.createRevision;
  }

  /**
   * Deletes the candidate's key, tried with backoff until it works while the
   * session lives: a key left on a live lease would wait its turn and lead
   * nobody, for good. On a lost lease the key goes with it.
   */
  async #withdraw(key: string, session: Session): Promise<void> {
    await keepTrying(
      () =>
        this.#client.delete(key, { timeout: WITHDRAW_TIMEOUT_MS }).then(
          () => true,
          (err: unknown) => err instanceof ClientClosedError,
        ),
      session.signal,
    );
  }

  /**
   * Takes back the leadership this session's lease already holds, as Go's
   * `ResumeElection`: after a restart, with `client.session({ lease })`.
   * Rejects with NotLeaderError if the lease has no key here, if the key's
   * token is not `token`, or if an older candidate leads (then `campaign`
   * with the same session waits its turn on the same key).
   */
  async resume(options: ResumeOptions = {}): Promise<Leadership> {
    checkOptions('resume', options, RESUME_OPTIONS);
    const { token, ...call } = options;
    if (token !== undefined && typeof token !== 'bigint')
      throw new InvalidArgumentError('resume: token must be a bigint');
    const session = await this.#sessionFor(call.signal);
    session.signal.throwIfAborted();
    const key = queueKey(this.prefix, session.lease);
    const release = claim(session, key, this.name);
    try {
      const r = await this.#client
        .txn()
        .success(Op.get(key), Op.readdir(this.prefix, OLDEST_FIRST))
        .commit(call);
      const [own, oldest] = r.results;
      const kv = own?.type === 'range' ? own.kvs[0] : undefined;
      const head = oldest?.type === 'range' ? oldest.kvs[0] : undefined;
      if (!kv)
        throw new NotLeaderError(`lease ${leaseHex(session.lease)} has no key in ${this.name}`);
      if (token !== undefined && kv.createRevision !== token)
        throw new NotLeaderError(`${key} has token ${kv.createRevision}, not ${token}`);
      if (head && head.createRevision !== kv.createRevision)
        throw new NotLeaderError(`${key} is a candidate, but ${head.key} leads ${this.name}`);
      return new Leadership({
        client: this.#client,
        session,
        key,
        token: kv.createRevision,
        prefix: this.prefix,
        onEnd: release,
      });
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The current leader, or undefined when nobody campaigns. */
  async leader(options: CallOptions = {}): Promise<LeaderInfo | undefined> {
    checkOptions('leader', options, LEADER_OPTIONS);
    const r = await this.#client.readdir(this.prefix, { ...OLDEST_FIRST, ...options });
    const kv = r.kvs[0];
    return kv ? toCandidate(kv) : undefined;
  }

  /** Every candidate in line at one revision, oldest first: the leader (if any) is the first. */
  async candidates(options: CallOptions = {}): Promise<Candidate[]> {
    checkOptions('candidates', options, LEADER_OPTIONS);
    const r = await this.#client.readdir(this.prefix, { ...IN_LINE, ...options });
    return r.kvs.map(toCandidate);
  }

  /**
   * The leader now, then every change of leader or of its value, in order and
   * once each, across reconnects; `undefined` (now, or when it happens) for an
   * election left without any candidate. Leave the loop or abort `signal` to stop.
   */
  async *observe(
    options: ObserveOptions = {},
  ): AsyncGenerator<LeaderInfo | undefined, void, undefined> {
    checkOptions('observe', options, OBSERVE_OPTIONS);
    yield* observeLeader(this.#client, this.prefix, options.signal);
  }

  /**
   * Campaigns, runs `work` while this replica leads, hands over when it ends,
   * and campaigns again, until `options.signal` aborts: see `RunOptions` and
   * the README's "Run loop".
   */
  run(value: ElectionValue, work: LeaderWork, options: RunOptions = {}): Promise<void> {
    return runElection(
      {
        fixedSession: this.#session,
        campaign: (stop) => this.#enter(value, { signal: stop }, { stop }),
        observe: (signal) => observeLeader(this.#client, this.prefix, signal),
      },
      value,
      work,
      options,
    );
  }

  async #sessionFor(signal: AbortSignal | undefined): Promise<Session> {
    if (this.#session) return this.#session;
    // Not created under this caller's signal: other campaigns may be waiting for it.
    const shared = this.#client.sharedSession();
    return signal ? untilAborted(shared, signal) : shared;
  }
}

const WITHDRAW_TIMEOUT_MS = 3_000;

const IN_LINE = { sortTarget: 'createRevision', sortOrder: 'ascend' } as const;
const OLDEST_FIRST = { ...IN_LINE, limit: 1 } as const;
