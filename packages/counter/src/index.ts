export { type CompareAndSetResult, Counter, type CounterCallOptions } from './counter.js';
export { CounterIndeterminateError, NotACounterError } from './errors.js';
