/**
 * A `Channel` turns pushed items into an async iterator: items wait in a queue
 * until the consumer asks for them. It subscribes when created, not on the
 * first `next()` (as an async generator would), so nothing pushed between
 * `changes()` and the start of the `for await` loop is lost.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  readonly #queue: T[] = [];
  readonly #onReturn: () => void;
  #waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  #error: unknown;

  /** `onReturn` runs once when the channel ends, however it ends. */
  constructor(onReturn: () => void) {
    this.#onReturn = onReturn;
  }

  push(item: T): void {
    if (this.#done) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve({ done: false, value: item });
    } else {
      this.#queue.push(item);
    }
  }

  /** Ends the channel once the queued items are consumed; with an error, `next()` then rejects. */
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#onReturn();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (!waiting) return;
    if (error === undefined) waiting.resolve({ done: true, value: undefined });
    else waiting.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#queue.length > 0) {
      return Promise.resolve({ done: false, value: this.#queue.shift() as T });
    }
    if (this.#done) {
      const error = this.#error;
      this.#error = undefined; // report an error once, then be done
      return error === undefined
        ? Promise.resolve({ done: true, value: undefined })
        : Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  /** Leaving a `for await` loop early unsubscribes and drops what is queued. */
  return(): Promise<IteratorResult<T>> {
    this.#queue.length = 0;
    this.end();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
