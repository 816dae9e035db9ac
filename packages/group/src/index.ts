export { MemberExistsError, MembershipEndedError } from './errors.js';
export { Group, type JoinOptions, type ViewOptions } from './group.js';
export { GroupView, type GroupViewEvents } from './group-view.js';
export { type Capabilities, MEMBER_ID_PATTERN, type Member } from './member.js';
export { Membership, type MembershipEvents } from './membership.js';
export {
  Partitioner,
  type PartitionerEvents,
  type PartitionerOptions,
  type Rebalance,
  type ShardMove,
} from './partitioner.js';
export { rendezvousOwner, weight } from './rendezvous.js';
