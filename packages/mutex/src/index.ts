export type { AcquireOptions, LockTarget } from './contender.js';
export {
  LockLostError,
  LockNotHeldError,
  LockTakenError,
  LockTimeoutError,
  SemaphoreLimitError,
} from './errors.js';
export { Lock, type LockEvents } from './lock.js';
export { MAX_LOCK_DELAY_MS } from './lock-delay.js';
export { Mutex, type MutexOptions } from './mutex.js';
export { RWMutex } from './rwmutex.js';
export { Semaphore, type SemaphoreAcquireOptions, type SemaphoreEntry } from './semaphore.js';
