/**
 * A run() of the election tests, recording what its callbacks and its work
 * report, in order, with short pauses between retries.
 */
import type { Election, Leadership, RunOptions } from '@etcdkit/election';

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** One replica's run(), with what its callbacks and its work reported, in order. */
export class RecordedRun {
  readonly events: string[] = [];
  readonly terms: Leadership[] = [];
  /** Tokens of the leaders onNewLeader reported, null for "no leader". */
  readonly leaders: Array<bigint | null> = [];
  readonly errors: unknown[] = [];
  readonly controller = new AbortController();
  readonly done: Promise<void>;

  constructor(
    readonly election: Election,
    readonly value: string,
    work: (leadership: Leadership, term: number) => Promise<void>,
    options: RunOptions = {},
  ) {
    this.done = election.run(
      value,
      (leadership) => {
        this.terms.push(leadership);
        return work(leadership, this.terms.length);
      },
      {
        signal: this.controller.signal,
        onStartedLeading: (l) => {
          this.events.push(`started ${this.#term(l)}`);
        },
        onStoppedLeading: (l) => {
          this.events.push(`stopped ${this.#term(l)}`);
        },
        onNewLeader: (leader) => {
          this.leaders.push(leader?.token ?? null);
        },
        onError: (err) => {
          this.errors.push(err);
        },
        retryDelay: 50,
        maxRetryDelay: 500,
        ...options,
      },
    );
    // A rejection is the test's to check, whenever it gets there.
    this.done.catch(() => undefined);
  }

  /** The term's number, counting from 1; 0 before the work has been handed it. */
  #term(leadership: Leadership): number {
    return this.terms.indexOf(leadership) + 1 || this.terms.length + 1;
  }

  /** The leaders reported, without "no leader" at the start (which races with the first campaign). */
  leadersSeen(): Array<bigint | null> {
    return this.leaders[0] === null ? this.leaders.slice(1) : this.leaders;
  }

  stop(reason?: unknown): Promise<void> {
    this.controller.abort(reason);
    return this.done;
  }
}
