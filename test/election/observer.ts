/**
 * An observer for the election tests: follows `election.observe()` in the
 * background and keeps what it yields, `undefined` for "no leader" included,
 * with the monotonic time each arrived.
 */
import { performance } from 'node:perf_hooks';
import type { Election, LeaderInfo } from '@etcdkit/election';

export class Observer {
  /** What observe() yielded, in order. */
  readonly seen: Array<LeaderInfo | undefined> = [];
  /** When each item of `seen` arrived (performance.now()). */
  readonly at: number[] = [];
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;

  constructor(election: Election) {
    const signal = this.#abort.signal;
    this.#done = (async () => {
      try {
        for await (const leader of election.observe({ signal })) {
          this.seen.push(leader);
          this.at.push(performance.now());
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    })();
  }

  /** The leaders' values in order, null for "no leader". */
  values(): Array<string | null> {
    return this.seen.map((l) => l?.value ?? null);
  }

  /** The tokens of the leaders seen, in order, skipping "no leader". */
  tokens(): bigint[] {
    return this.seen.flatMap((l) => (l ? [l.token] : []));
  }

  /** Stops observing; rejects if observing had failed. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}
