/**
 * Which instances a consumer may choose among, in order: those its filter
 * accepts, that are `up` (not draining), healthy, and not ejected locally.
 * When health or ejection would leave nothing, the candidates are the
 * instances they would have excluded (`fallback`, on by default): a service
 * whose checks all fail, or whose every instance this process has seen fail,
 * is more likely misjudged than entirely down, and a request that may work
 * beats none. With `fallback: false` the answer is then empty.
 */
import { InvalidArgumentError } from '@etcdkit/client';
import type { Ejections } from './ejection.js';
import type { ServiceInstance } from './instance.js';

export interface PickOptions {
  /** Only instances for which this returns true are candidates; never relaxed by `fallback`. */
  filter?: ((instance: ServiceInstance) => boolean) | undefined;
  /** Consider unhealthy instances as well. Default false. */
  includeUnhealthy?: boolean | undefined;
  /**
   * When every instance is unhealthy, or every healthy one is ejected, choose
   * among them anyway. Default true; false picks nothing then.
   */
  fallback?: boolean | undefined;
}

export const PICK_OPTIONS = ['filter', 'includeUnhealthy', 'fallback'];

/** The candidates among `up` (the `up` instances, sorted by ID; `healthy` those of them that are healthy). */
export function chooseCandidates(
  up: readonly ServiceInstance[],
  healthy: readonly ServiceInstance[],
  options: PickOptions,
  ejections: Ejections | undefined,
): readonly ServiceInstance[] {
  const { filter } = options;
  for (const name of ['includeUnhealthy', 'fallback'] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new InvalidArgumentError(`${name} must be true or false, got ${String(value)}`);
    }
  }
  if (filter !== undefined && typeof filter !== 'function') {
    throw new InvalidArgumentError('filter must be a function');
  }
  const fallback = options.fallback ?? true;
  // Without a filter the cached lists are passed on as they are: pickers may keep state per list.
  const all = filter ? up.filter(filter) : up;
  let chosen = all;
  if (!options.includeUnhealthy) {
    const fit = filter ? all.filter((i) => i.healthy) : healthy;
    if (fit.length > 0 || !fallback) chosen = fit;
  }
  if (ejections?.any) {
    const kept = chosen.filter((i) => !ejections.has(i.id));
    if (kept.length > 0 || !fallback) chosen = kept;
  }
  return chosen;
}
