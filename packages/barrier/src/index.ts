export { Barrier, type HoldOptions, type WaitOptions } from './barrier.js';
export { DoubleBarrier, type DoubleBarrierOptions } from './double-barrier.js';
export { BarrierHeldError, BarrierStateError, TooManyParticipantsError } from './errors.js';
