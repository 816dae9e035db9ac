import { EtcdError } from '@etcdkit/client';

/** `hold()` found the barrier key there already: someone holds the barrier. */
export class BarrierHeldError extends EtcdError {
  override readonly name = 'BarrierHeldError' as const;
  override readonly code = 'ETCDKIT_BARRIER_HELD' as const;
  /** The existing key's create revision, when known. */
  readonly holderRevision: bigint | undefined;

  constructor(message: string, holderRevision?: bigint) {
    super(message);
    this.holderRevision = holderRevision;
  }
}

/**
 * `enter()` found more participants under the barrier than its count: this
 * one's key was withdrawn again.
 */
export class TooManyParticipantsError extends EtcdError {
  override readonly name = 'TooManyParticipantsError' as const;
  override readonly code = 'ETCDKIT_TOO_MANY_PARTICIPANTS' as const;

  /** `found`: how many participant keys there were, this one's included. */
  constructor(
    key: string,
    readonly found: number,
    readonly count: number,
  ) {
    super(`${found} participants entered the double barrier ${key}, made for ${count}`);
  }
}

/** `enter()` on a double barrier already entered (or entering), or `leave()` on one not entered. */
export class BarrierStateError extends EtcdError {
  override readonly name = 'BarrierStateError' as const;
  override readonly code = 'ETCDKIT_BARRIER_STATE' as const;
}
