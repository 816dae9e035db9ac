/**
 * Pickers choose one instance among candidates (the `up` instances of a
 * service set, sorted by ID).
 *
 * How they work: round-robin remembers the ID it picked last and takes the
 * next ID in order, wrapping around, so instances joining or leaving do not
 * reset or skew the rotation. Random picks uniformly. Weighted picks at
 * random with probability weight / total weight: it keeps the running sums of
 * the weights for the candidate list it last saw and finds the pick by binary
 * search, so a pick costs O(log n) while the set is unchanged.
 */
import { InvalidArgumentError } from '@etcdkit/client';
import type { ServiceInstance } from './instance.js';

export interface Picker {
  /** Chooses one of `candidates` (sorted by ID), or undefined when there are none. */
  pick(candidates: readonly ServiceInstance[]): ServiceInstance | undefined;
}

export type PickStrategy = 'round-robin' | 'random' | 'weighted';

export interface PickerOptions {
  /** Source of randomness in [0, 1). Default `Math.random`. */
  random?: (() => number) | undefined;
}

/** Each candidate in turn, in ID order. */
export function roundRobinPicker(): Picker {
  let last: string | undefined;
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      let next = 0;
      if (last !== undefined) {
        // The first candidate whose ID sorts after the last pick.
        let lo = 0;
        let hi = candidates.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (candidates[mid]!.id <= last) lo = mid + 1;
          else hi = mid;
        }
        next = lo === candidates.length ? 0 : lo;
      }
      const chosen = candidates[next]!;
      last = chosen.id;
      return chosen;
    },
  };
}

/** Any candidate, uniformly. */
export function randomPicker(options: PickerOptions = {}): Picker {
  const random = options.random ?? Math.random;
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))];
    },
  };
}

/** A candidate with probability proportional to its weight. */
export function weightedPicker(options: PickerOptions = {}): Picker {
  const random = options.random ?? Math.random;
  let seen: readonly ServiceInstance[] | undefined;
  let sums: number[] = [];
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      if (candidates !== seen) {
        seen = candidates;
        let total = 0;
        sums = candidates.map((c) => {
          total += c.weight;
          return total;
        });
      }
      const target = random() * sums[sums.length - 1]!;
      let lo = 0;
      let hi = sums.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sums[mid]! <= target) lo = mid + 1;
        else hi = mid;
      }
      return candidates[lo];
    },
  };
}

const STRATEGIES: Record<PickStrategy, () => Picker> = {
  'round-robin': roundRobinPicker,
  random: randomPicker,
  weighted: weightedPicker,
};

const KNOWN = `${Object.keys(STRATEGIES).join(', ')}, or an object with a pick(candidates) method`;

/** A new picker for `strategy`; an unknown name is InvalidArgumentError. */
export function pickerFor(strategy: PickStrategy): Picker {
  // Own keys only: a name such as "toString" must not reach Object.prototype.
  if (typeof strategy !== 'string' || !Object.hasOwn(STRATEGIES, strategy)) {
    throw new InvalidArgumentError(`unknown picker ${JSON.stringify(strategy)} (known: ${KNOWN})`);
  }
  return STRATEGIES[strategy]();
}

/** A picker object given to `pick()`; anything without a `pick` method is InvalidArgumentError. */
export function checkPicker(picker: unknown): Picker {
  if (typeof (picker as Partial<Picker> | null)?.pick === 'function') return picker as Picker;
  const got = picker === null ? 'null' : typeof picker;
  throw new InvalidArgumentError(`pick: not a picker (${got}); known: ${KNOWN}`);
}
