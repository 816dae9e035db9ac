/**
 * Errors of group membership. Like every etcdkit error they extend `EtcdError`
 * with a literal `name` and `code`. Bad input (a group name, a member ID,
 * capabilities, options) is the client's `InvalidArgumentError`; a lost lease
 * is the client's `SessionExpiredError`.
 */
import { EtcdError, type EtcdErrorOptions } from '@etcdkit/client';

/** A member with this ID is in the group already; the join wrote nothing. */
export class MemberExistsError extends EtcdError {
  override readonly name = 'MemberExistsError' as const;
  override readonly code = 'ETCDKIT_MEMBER_EXISTS' as const;
  /** The ID that was refused. */
  readonly memberId: string;
  /** The lease of the member that holds the ID. */
  readonly lease: bigint;

  constructor(memberId: string, lease: bigint, message: string, options: EtcdErrorOptions = {}) {
    super(message, options);
    this.memberId = memberId;
    this.lease = lease;
  }
}

/** The membership ended by `leave()`: the reason of its `signal` then. */
export class MembershipEndedError extends EtcdError {
  override readonly name = 'MembershipEndedError' as const;
  override readonly code = 'ETCDKIT_MEMBERSHIP_ENDED' as const;
}
