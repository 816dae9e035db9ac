export { StmConflictError, StmIndeterminateError } from './errors.js';
export {
  DEFAULT_ISOLATION,
  DEFAULT_MAX_ATTEMPTS,
  type Isolation,
  type StmOptions,
} from './options.js';
export { stm } from './stm.js';
export { type PutOptions, Transaction } from './transaction.js';
