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
  startRevision?: bigint | number | undefined;
  /** Ask etcd for periodic empty progress responses (`progress` events). */
  progressNotify?: boolean | undefined;
  /** Leave out puts (`'noPut'`, or the seed's 0) and/or deletes (`'noDelete'`, 1). */
  filters?: WatchFilter[] | undefined;
  /** Include the previous pair in each event. */
  prevKv?: boolean | undefined;
  /** Use this watch ID on the shared stream instead of an automatic one. */
  watchId?: number | undefined;
  /** Let etcd split very large revisions into several messages (reassembled here). */
  fragment?: boolean | undefined;
  /** Cancels the watcher: pending iterations reject with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * End the watch by itself after this many ms (the seed's `timeout`): the
   * iteration then finishes (`done`), `endReason` is `'expired'` and `expired`
   * is emitted. It also bounds the wait for etcd to create the watch. Default: none.
   */
  timeout?: number | undefined;
}

const WATCH_OPTIONS = new Set([
  'startRevision',
  'progressNotify',
  'filters',
  'prevKv',
  'watchId',
  'fragment',
  'signal',
  'timeout',
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
  seenRevision?: bigint,
): Promise<Watcher<V>> {
  checkOptions(prefix ? 'watchdir' : 'watch', options, WATCH_OPTIONS);
  let spec: WatchSpec;
  if (prefix) {
    const range = ctx.keys.dir(key);
    spec = baseSpec(range.key, range.end, options);
  } else {
    spec = baseSpec(ctx.keys.key(key), undefined, options);
  }
  if (seenRevision !== undefined) spec.seenRevision = seenRevision;
  const watcher = new Watcher<V>(spec, ctx.keys, ctx.codec, hub);
  if (options.watchId !== undefined) {
    hub.checkId(options.watchId);
    watcher.id = options.watchId;
  }
  const expire = options.timeout ?? 0;
  if (!Number.isSafeInteger(expire) || expire < 0) {
    throw new InvalidArgumentError(
      `watch timeout must be a whole number of ms >= 0, got ${expire}`,
    );
  }
  const clientTimeout = ctx.transport.timeout;
  const create =
    expire > 0 && clientTimeout > 0 ? Math.min(expire, clientTimeout) : expire || clientTimeout;
  return watcher.start(options.signal, { create, expire });
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
