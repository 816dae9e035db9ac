/**
 * `watch` and `watchdir`: validate the seed's options, build the watch spec and
 * start a watcher on the client's hub. The watcher resolves once etcd has
 * created the watch, so every change after that point is delivered.
 */
import type { Key } from './bytes.js';
import type { Context } from './context.js';
import { InvalidArgumentError } from './errors.js';
import { checkOptions, toBool, toInt64 } from './options.js';
import { Watcher, type WatchFilter, type WatchHub, type WatchSpec } from './watcher.js';

export interface WatchOptions {
  /** First revision to deliver (inclusive). Default: changes after "now". */
  startRevision?: bigint | number;
  /** Ask etcd for periodic empty progress responses (`progress` events). */
  progressNotify?: boolean;
  /** Leave out puts (`'noPut'`, or the seed's 0) and/or deletes (`'noDelete'`, 1). */
  filters?: WatchFilter[];
  /** Include the previous pair in each event. */
  prevKv?: boolean;
  /** Use this watch ID on the shared stream instead of an automatic one. */
  watchId?: number;
  /** Let etcd split very large revisions into several messages (reassembled here). */
  fragment?: boolean;
  /** Cancels the watcher: pending iterations reject with `signal.reason`. */
  signal?: AbortSignal;
}

const WATCH_OPTIONS = new Set([
  'startRevision',
  'progressNotify',
  'filters',
  'prevKv',
  'watchId',
  'fragment',
  'signal',
]);
const FILTERS: Record<string, string> = {
  noPut: 'NOPUT',
  noDelete: 'NODELETE',
  '0': 'NOPUT',
  '1': 'NODELETE',
};

export interface IdChecker {
  checkId(id: number): void;
}

export async function startWatch<V>(
  ctx: Context<V>,
  hub: WatchHub & IdChecker,
  key: Key,
  prefix: boolean,
  options: WatchOptions = {},
): Promise<Watcher<V>> {
  checkOptions(prefix ? 'watchdir' : 'watch', options, WATCH_OPTIONS);
  let spec: WatchSpec;
  if (prefix) {
    const range = ctx.keys.dir(key);
    spec = baseSpec(range.key, range.end, options);
  } else {
    spec = baseSpec(ctx.keys.key(key), undefined, options);
  }
  const watcher = new Watcher<V>(spec, ctx.keys, ctx.codec, hub);
  if (options.watchId !== undefined) {
    hub.checkId(options.watchId);
    watcher.id = options.watchId;
  }
  return watcher.start(options.signal);
}

function baseSpec(key: Uint8Array, end: Uint8Array | undefined, options: WatchOptions): WatchSpec {
  const filters = (options.filters ?? []).map((f) => {
    const wire = FILTERS[String(f)];
    if (!wire)
      throw new InvalidArgumentError(
        `unknown watch filter ${String(f)}: use 'noPut' or 'noDelete'`,
      );
    return wire;
  });
  return {
    key,
    end,
    startRevision:
      options.startRevision === undefined
        ? 0n
        : toInt64(options.startRevision, 'startRevision', 1n),
    prevKv: toBool(options.prevKv, 'prevKv'),
    progressNotify: toBool(options.progressNotify, 'progressNotify'),
    fragment: toBool(options.fragment, 'fragment'),
    filters,
  };
}
