export type { AcquireOptions, LockTarget } from './contender.js';
export { LockNotHeldError, LockTakenError, LockTimeoutError } from './errors.js';
export { Lock } from './lock.js';
export { Mutex } from './mutex.js';
export { RWMutex } from './rwmutex.js';
export { Semaphore } from './semaphore.js';
