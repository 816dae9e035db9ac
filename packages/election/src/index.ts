export {
  type CampaignOptions,
  Election,
  type ElectionOptions,
  type ObserveOptions,
  type ResumeOptions,
} from './election.js';
export { AlreadyCampaigningError, NotLeaderError } from './errors.js';
export type { Candidate, ElectionValue, LeaderInfo } from './leader-info.js';
export { Leadership, type LeadershipEvents } from './leadership.js';
export {
  DEFAULT_MAX_RETRY_DELAY_MS,
  DEFAULT_RETRY_DELAY_MS,
  type LeaderWork,
  type RunOptions,
} from './run.js';
