/**
 * What a semaphore contender stores in its queue key: the permits it takes
 * and the limit it was made with, as JSON text `{"permits":2,"limit":5}`.
 *
 * Keys written by earlier versions of Semaphore hold an empty value, as do
 * Mutex and etcdctl keys: such a key, or any value that is not a claim,
 * counts as one permit and has no limit to check.
 */

export interface SemaphoreClaim {
  /** Permits taken by the key's contender, at least 1. */
  permits: number;
  /** The limit its contender was made with; undefined for a key without a claim. */
  limit: number | undefined;
}

export function encodeClaim(claim: { permits: number; limit: number }): string {
  return JSON.stringify({ permits: claim.permits, limit: claim.limit });
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function positive(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 1 ? (value as number) : undefined;
}

export function decodeClaim(value: Uint8Array): SemaphoreClaim {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(value));
  } catch {
    return { permits: 1, limit: undefined };
  }
  if (typeof parsed !== 'object' || parsed === null) return { permits: 1, limit: undefined };
  const { permits, limit } = parsed as Record<string, unknown>;
  return { permits: positive(permits) ?? 1, limit: positive(limit) };
}

/** How many permits a queue key takes: the weight it counts with against the limit. */
export function permitsOf(kv: { valueBytes: Uint8Array }): number {
  return decodeClaim(kv.valueBytes).permits;
}
