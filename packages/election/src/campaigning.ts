/**
 * Which keys each session campaigns with right now, across every `Election`
 * of the process: the key is per lease, so a second campaign of one session
 * in one election would share the first one's key, and both would believe
 * they lead.
 */
import { leaseHex, type Session } from '@etcdkit/client';
import { AlreadyCampaigningError } from './errors.js';

const campaigning = new WeakMap<Session, Set<string>>();

/** Registers a campaign of `session` on `key`; returns its release, to call once. */
export function claim(session: Session, key: string, name: string): () => void {
  let keys = campaigning.get(session);
  if (!keys) {
    keys = new Set();
    campaigning.set(session, keys);
  }
  if (keys.has(key)) {
    throw new AlreadyCampaigningError(
      `lease ${leaseHex(session.lease)} already campaigns in ${name}: resign first, or use another session`,
    );
  }
  keys.add(key);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    keys.delete(key);
  };
}
