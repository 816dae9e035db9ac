/**
 * Errors of the election. Both extend the client's `EtcdError`, so one
 * `instanceof EtcdError` (or a switch on `code`) covers every failure. A
 * closed or expired session rejects with the client's `SessionExpiredError`,
 * a bad name with its `InvalidArgumentError`.
 */
import { EtcdError } from '@etcdkit/client';

/**
 * This replica does not lead (any more): its key was deleted, replaced or
 * expired, or it resigned. Thrown by `proclaim`, `resign` and `resume`, and
 * the reason of `Leadership.signal` when the key is gone.
 */
export class NotLeaderError extends EtcdError {
  override readonly name = 'NotLeaderError' as const;
  override readonly code = 'ETCDKIT_NOT_LEADER' as const;
}

/**
 * The same session already campaigns in (or leads) this election. The key is
 * per lease, so a second campaign would share the first one's key and both
 * would believe they lead: it is refused instead.
 */
export class AlreadyCampaigningError extends EtcdError {
  override readonly name = 'AlreadyCampaigningError' as const;
  override readonly code = 'ETCDKIT_ALREADY_CAMPAIGNING' as const;
}
