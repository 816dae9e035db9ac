/**
 * `Group` names a group of processes in etcd: members join it with a leased
 * key `<name>/<member ID>` that lives as long as their lease, and anyone can
 * list the members, follow them live, and partition work among them.
 */
import {
  type CallOptions,
  type Etcd,
  InvalidArgumentError,
  isClient,
  Session,
} from '@etcdkit/client';
import { GroupView } from './group-view.js';
import {
  byId,
  type Capabilities,
  checkCapabilities,
  checkMemberId,
  decodeMember,
  type Member,
} from './member.js';
import { Membership } from './membership.js';
import { Partitioner, type PartitionerOptions } from './partitioner.js';

export interface JoinOptions extends CallOptions {
  /** What this member announces about itself; every view shows it. Default `{}`. */
  capabilities?: Capabilities | undefined;
  /**
   * Put the key on this session's lease. `leave()` then deletes the key and
   * leaves the session open. Default: a session of the membership's own,
   * revoked by `leave()`.
   */
  session?: Session | undefined;
  /**
   * TTL in seconds of the membership's own session: how long a crashed member
   * stays in the group. Default: the client's `sessionTtl` (15 s unless set).
   */
  ttl?: number | undefined;
}

export interface ViewOptions {
  /** Cancels the first listing, and closes the view whenever it aborts later. */
  signal?: AbortSignal | undefined;
}

const JOIN_OPTIONS = ['capabilities', 'session', 'ttl', 'signal', 'timeout'];
const CALL_OPTIONS = ['signal', 'timeout'];
const VIEW_OPTIONS = ['signal'];
const PAGE_SIZE = 1000;

export class Group {
  /** The group's name, as given. */
  readonly name: string;
  /** `<name>/`, the prefix of every member's key. */
  readonly prefix: string;
  readonly #client: Etcd<unknown>;

  /** Works with a client of any codec. Keys are relative to the client's keyPrefix. */
  constructor(client: Etcd<unknown>, name: string) {
    if (!isClient(client))
      throw new InvalidArgumentError('new Group(client, name): client must be an Etcd client');
    if (typeof name !== 'string' || name.length === 0)
      throw new InvalidArgumentError('a group name is a non-empty string');
    if (name.endsWith('/'))
      throw new InvalidArgumentError(
        `group name ${JSON.stringify(name)} ends with "/": keys are "<name>/<member>", give the name without it`,
      );
    this.#client = client;
    this.name = name;
    this.prefix = `${name}/`;
  }

  /**
   * Joins as `memberId` and resolves once the member's key is stored. Rejects
   * with `MemberExistsError` if another member holds the ID. Everything is
   * checked before a lease is granted.
   */
  async join(memberId: string, options: JoinOptions = {}): Promise<Membership> {
    checkOptions('join', options, JOIN_OPTIONS);
    const id = checkMemberId(memberId);
    const capabilities = checkCapabilities(options.capabilities);
    const { session, ttl, signal, timeout } = options;
    if (session !== undefined && !(session instanceof Session))
      throw new InvalidArgumentError('join: session must be a Session');
    if (session !== undefined && ttl !== undefined)
      throw new InvalidArgumentError('join: ttl and session cannot be combined');
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl < 1))
      throw new InvalidArgumentError(
        `join: ttl must be a whole number of seconds >= 1, got ${ttl}`,
      );
    signal?.throwIfAborted();
    session?.signal.throwIfAborted();
    const call = { signal, timeout };
    const init = {
      client: this.#client,
      group: this.name,
      key: `${this.prefix}${id}`,
      id,
      capabilities,
      session: session ?? (await this.#client.session({ ...call, ttl })),
      owned: session === undefined,
    };
    return Membership.create(init, call);
  }

  /** The members right now, sorted by ID: one read at one revision, no watch. */
  async members(options: CallOptions = {}): Promise<Member[]> {
    checkOptions('members', options, CALL_OPTIONS);
    const found: Member[] = [];
    for await (const kv of this.#client.range(this.prefix, { pageSize: PAGE_SIZE, ...options })) {
      const member = decodeMember(this.prefix, kv);
      if (member) found.push(member);
    }
    return found.sort(byId);
  }

  /** The live membership: resolves once the first listing is complete. Close it when done. */
  async view(options: ViewOptions = {}): Promise<GroupView> {
    checkOptions('view', options, VIEW_OPTIONS);
    return GroupView.open(this.#client, this.prefix, options.signal);
  }

  /** A partitioner over a live view of its own, closed with it. */
  async partitioner(options: PartitionerOptions & ViewOptions = {}): Promise<Partitioner> {
    checkOptions('partitioner', options, ['shards', 'self', 'filter', 'signal']);
    const { signal, ...rest } = options;
    if (rest.self !== undefined && rest.self.group !== this.name)
      throw new InvalidArgumentError(`partitioner: self is a member of ${rest.self.group}`);
    const view = await this.view({ signal });
    try {
      return new Partitioner(view, rest, true);
    } catch (err) {
      await view.close();
      throw err;
    }
  }
}

/** Rejects option names the method does not know, so a typo never goes unnoticed. */
function checkOptions(method: string, options: unknown, allowed: readonly string[]): void {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError(`${method}: options must be an object`);
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name))
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: ${allowed.join(', ')})`,
      );
  }
}
