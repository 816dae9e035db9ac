export {
  type CampaignOptions,
  Election,
  type ElectionOptions,
  type ObserveOptions,
  type ResumeOptions,
} from './election.js';
export { AlreadyCampaigningError, NotLeaderError } from './errors.js';
export type { ElectionValue, LeaderInfo } from './leader-info.js';
export { Leadership, type LeadershipEvents } from './leadership.js';
