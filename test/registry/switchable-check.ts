/**
 * A health check whose outcome a test sets: pass, fail (false), throw, or
 * hang. It counts its calls, the failures since the mode last changed, and
 * how many calls ever ran at once.
 */
export type CheckMode = 'pass' | 'fail' | 'throw' | 'hang' | 'hang-abortable';

export class SwitchableCheck {
  mode: CheckMode;
  calls = 0;
  /** Calls since the mode was last set. */
  sinceSwitch = 0;
  running = 0;
  maxRunning = 0;
  /** Why the signals of `hang-abortable` calls aborted. */
  readonly abortReasons: unknown[] = [];
  #release: (() => void)[] = [];

  constructor(mode: CheckMode = 'pass') {
    this.mode = mode;
  }

  set(mode: CheckMode): void {
    this.mode = mode;
    this.sinceSwitch = 0;
  }

  /** Lets every hanging call end (as a success). */
  release(): void {
    for (const release of this.#release.splice(0)) release();
  }

  readonly check = async (signal: AbortSignal): Promise<boolean> => {
    this.calls++;
    this.sinceSwitch++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      switch (this.mode) {
        case 'pass':
          return true;
        case 'fail':
          return false;
        case 'throw':
          throw new Error('database unreachable');
        case 'hang':
          // Ignores its signal, as a careless check would.
          await new Promise<void>((resolve) => this.#release.push(resolve));
          return true;
        case 'hang-abortable':
          await new Promise<void>((_, reject) => {
            const onAbort = () => {
              this.abortReasons.push(signal.reason);
              reject(signal.reason);
            };
            signal.addEventListener('abort', onAbort, { once: true });
          });
          return true;
      }
    } finally {
      this.running--;
    }
  };
}
