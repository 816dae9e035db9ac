export type { AcquireOptions, LockTarget } from './contender.js';
export {
  LockLostError,
  LockNotHeldError,
  LockTakenError,
  LockTimeoutError,
  SemaphoreLimitError,
} from './errors.js';
export { Lock, type LockEvents } from './lock.js';
export { Mutex } from './mutex.js';
export { RWMutex } from './rwmutex.js';
export { Semaphore, type SemaphoreAcquireOptions, type SemaphoreEntry } from './semaphore.js';
