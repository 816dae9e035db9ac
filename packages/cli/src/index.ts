export { type RunIo, run, usage } from './run.js';
