/**
 * A `Partitioner` maps keys (work items, shard IDs) to the members of a group
 * by rendezvous hashing over a live view, and reports which shards move when
 * members come and go.
 *
 * How it works: the members eligible to own keys are the view's members that
 * pass `filter`, less this process's own member once its membership has
 * ended: a member that lost its lease counts itself out at once, before the
 * others see its key expire. Whenever that set changes (a `changed` event of
 * the view, or the end of `self`), the owners of the given shards are worked
 * out again and `rebalanced` tells which moved. Every process that sees the
 * same members computes the same owners; right after a join or leave, two
 * processes may briefly see different members (see the README).
 */
import { InvalidArgumentError } from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import type { GroupView } from './group-view.js';
import type { Member } from './member.js';
import type { Membership } from './membership.js';
import { rendezvousOwner } from './rendezvous.js';

export interface PartitionerOptions {
  /** The shards whose owners `rebalanced` reports and `owned()` / `mine()` list by default. Default: none. */
  shards?: readonly string[] | undefined;
  /** This process's membership: `mine()` lists its keys, and it owns nothing once it has ended. */
  self?: Membership | undefined;
  /** Only members for which this returns true own keys, e.g. `(m) => m.capabilities.gpu === 'yes'`. */
  filter?: ((member: Member) => boolean) | undefined;
}

/** A shard whose owner changed; `undefined` means nobody (no eligible member). */
export interface ShardMove {
  readonly shard: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
}

export interface Rebalance {
  /** IDs of the members that own keys now, sorted. */
  readonly members: readonly string[];
  /** The shards whose owner changed, in the order of the shard list. */
  readonly moved: readonly ShardMove[];
  /** With `self`: shards it owns now and did not before. */
  readonly acquired: readonly string[];
  /** With `self`: shards it owned before and does not now. */
  readonly released: readonly string[];
}

export interface PartitionerEvents {
  /** The set of owning members changed; `moved` may be empty when no shard changed hands. */
  rebalanced: [rebalance: Rebalance];
  /** The partitioner was closed. */
  closed: [];
}

const OPTIONS = ['shards', 'self', 'filter'];

export class Partitioner extends EventEmitter<PartitionerEvents> implements AsyncDisposable {
  /** The shards given, without duplicates, in their order. */
  readonly shards: readonly string[];
  readonly #view: GroupView;
  readonly #self: Membership | undefined;
  readonly #filter: ((member: Member) => boolean) | undefined;
  readonly #ownsView: boolean;
  #members: readonly string[] = [];
  #owners = new Map<string, string | undefined>();
  #closed = false;
  readonly #update = () => this.#recompute();
  readonly #onViewClosed = () => void this.close();

  /** Partitions over `view`; the view stays the caller's (see `group.partitioner()` for one that owns it). */
  constructor(view: GroupView, options: PartitionerOptions = {}, ownsView = false) {
    super();
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError('Partitioner: options must be an object');
    for (const name of Object.keys(options)) {
      if (!OPTIONS.includes(name))
        throw new InvalidArgumentError(
          `Partitioner: unknown option "${name}" (known: ${OPTIONS.join(', ')})`,
        );
    }
    const shards = options.shards ?? [];
    if (!Array.isArray(shards) || shards.some((s) => typeof s !== 'string'))
      throw new InvalidArgumentError('Partitioner: shards must be an array of strings');
    if (options.filter !== undefined && typeof options.filter !== 'function')
      throw new InvalidArgumentError('Partitioner: filter must be a function');
    this.shards = Object.freeze([...new Set(shards)]);
    this.#view = view;
    this.#self = options.self;
    this.#filter = options.filter;
    this.#ownsView = ownsView;
    this.#members = this.#eligible();
    this.#owners = this.#assign(this.#members);
    view.on('changed', this.#update);
    view.once('closed', this.#onViewClosed);
    this.#self?.signal.addEventListener('abort', this.#update, { once: true });
  }

  /** IDs of the members that own keys, sorted. */
  get members(): readonly string[] {
    return this.#members;
  }

  /** The ID of the member that owns `key` now, or undefined when no member is eligible. */
  owner(key: string): string | undefined {
    if (typeof key !== 'string') throw new InvalidArgumentError('owner: key must be a string');
    return this.#owners.has(key) ? this.#owners.get(key) : rendezvousOwner(key, this.#members);
  }

  /** The keys among `keys` (default: the shards) that `memberId` owns now. */
  owned(memberId: string, keys: readonly string[] = this.shards): string[] {
    return keys.filter((key) => this.owner(key) === memberId);
  }

  /** The keys among `keys` (default: the shards) this process's own member owns now. */
  mine(keys: readonly string[] = this.shards): string[] {
    if (!this.#self) throw new InvalidArgumentError('mine: the partitioner was made without self');
    return this.#self.active ? this.owned(this.#self.id, keys) : [];
  }

  /** Stops following the view (and closes it, if the partitioner opened it). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#view.off('changed', this.#update);
    this.#view.off('closed', this.#onViewClosed);
    this.#self?.signal.removeEventListener('abort', this.#update);
    if (this.#ownsView) await this.#view.close();
    this.emit('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #eligible(): readonly string[] {
    const self = this.#self;
    const ended = self !== undefined && !self.active ? self.id : undefined;
    const filter = this.#filter;
    return Object.freeze(
      this.#view
        .members()
        .filter((m) => m.id !== ended && (!filter || filter(m)))
        .map((m) => m.id),
    );
  }

  #assign(members: readonly string[]): Map<string, string | undefined> {
    return new Map(this.shards.map((shard) => [shard, rendezvousOwner(shard, members)]));
  }

  #recompute(): void {
    if (this.#closed) return;
    const members = this.#eligible();
    const same =
      members.length === this.#members.length && members.every((id, i) => id === this.#members[i]);
    if (same) return;
    const before = this.#owners;
    const after = this.#assign(members);
    this.#members = members;
    this.#owners = after;
    const moved: ShardMove[] = [];
    for (const shard of this.shards) {
      const from = before.get(shard);
      const to = after.get(shard);
      if (from !== to) moved.push(Object.freeze({ shard, from, to }));
    }
    const me = this.#self?.id;
    this.emit(
      'rebalanced',
      Object.freeze({
        members,
        moved: Object.freeze(moved),
        acquired: me === undefined ? [] : moved.filter((m) => m.to === me).map((m) => m.shard),
        released: me === undefined ? [] : moved.filter((m) => m.from === me).map((m) => m.shard),
      }),
    );
  }
}
