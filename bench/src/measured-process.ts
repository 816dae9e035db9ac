/**
 * The runner's handle on one child (child.ts): starts it, sends it requests
 * and waits for its answers, each wait bounded, and turns a crash, a `failed`
 * message or silence into a rejection.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildTask, RunnerMessage } from './protocol.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

type Answer<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

/** The child failed while connecting or preparing, before its warm-up. */
export class SetUpError extends Error {
  override name = 'SetUpError';
}

export class MeasuredProcess {
  readonly #proc: ChildProcess;
  readonly #queue: ChildMessage[] = [];
  #waiter: ((m: ChildMessage | Error) => void) | undefined;
  #ended: Error | undefined;

  private constructor(task: ChildTask) {
    this.#proc = fork(CHILD, [JSON.stringify(task)], {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#proc.on('message', (m: ChildMessage) => this.#deliver(m));
    this.#proc.on('error', (err) => this.#end(err));
    this.#proc.on('exit', (code, signal) => {
      this.#end(new Error(`the child exited (${signal ?? code})`));
    });
  }

  /** Operations the child ran to warm up. */
  warmupOps = 0;

  /** Starts a child and waits until it has warmed up. */
  static async start(task: ChildTask, timeoutMs: number): Promise<MeasuredProcess> {
    const child = new MeasuredProcess(task);
    try {
      child.warmupOps = (await child.#expect('ready', timeoutMs)).warmupOps;
    } catch (err) {
      child.kill();
      throw err;
    }
    return child;
  }

  /** Sends `message` and waits for the answer of type `type`. */
  async ask<T extends ChildMessage['type']>(
    message: RunnerMessage,
    type: T,
    timeoutMs: number,
  ): Promise<Answer<T>> {
    if (this.#ended) throw this.#ended;
    this.#proc.send(message);
    return this.#expect(type, timeoutMs);
  }

  /** Waits for the process to exit, killing it if it does not within `timeoutMs`. */
  async exited(timeoutMs: number): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.kill(), timeoutMs);
      this.#proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.#proc.pid ?? -1;
  }

  kill(): void {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) this.#proc.kill('SIGKILL');
  }

  #deliver(m: ChildMessage | Error): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter(m);
    } else if (!(m instanceof Error)) this.#queue.push(m);
  }

  #end(err: Error): void {
    this.#ended ??= err;
    this.#deliver(err);
  }

  async #expect<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<Answer<T>> {
    const m = await this.#next(timeoutMs);
    if (m.type === 'failed') throw m.setUp ? new SetUpError(m.message) : new Error(m.message);
    if (m.type !== type) throw new Error(`expected ${type} from the child, got ${m.type}`);
    return m as Answer<T>;
  }

  #next(timeoutMs: number): Promise<ChildMessage> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        this.kill();
        reject(new Error(`no answer from the child within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (m) => {
        clearTimeout(timer);
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }
}
