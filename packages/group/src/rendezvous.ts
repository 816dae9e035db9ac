/**
 * Rendezvous (highest random weight) hashing: maps a key to one of a set of
 * members, the same way in every process, with no state to share.
 *
 * How it works: each member's weight for a key is the first 8 bytes of
 * SHA-256("<member ID>\n<key>") read as an unsigned integer; the member with
 * the highest weight owns the key (ties, which take a hash collision, go to
 * the smaller ID). A member's weights do not depend on who else is in the
 * set, so when a member leaves only the keys it owned move, each to its
 * runner-up, and when one joins it takes only the keys it now outweighs:
 * about 1/N of them. Member IDs cannot hold "\n", so no two (member, key)
 * pairs hash the same text.
 */
import { createHash } from 'node:crypto';

/** The weight of `memberId` for `key`: equal inputs give equal weights, in every process. */
export function weight(memberId: string, key: string): bigint {
  return createHash('sha256').update(`${memberId}\n${key}`, 'utf8').digest().readBigUInt64BE(0);
}

/** The ID among `memberIds` that owns `key`, or undefined when there is none. */
export function rendezvousOwner(key: string, memberIds: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const id of memberIds) {
    const w = weight(id, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}
