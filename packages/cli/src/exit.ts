/**
 * How etcdkit ends: its exit codes, and why it was asked to stop early.
 *
 * A command run under `lock` or `elect` passes its own code through, or
 * 128+N when signal N ended it (as a shell reports it). etcdkit's own codes
 * stay clear of those and of the shell's 126 and 127, except EXIT_LOST, which
 * a command could return too: it is the code sysexits.h names EX_TEMPFAIL,
 * "try again later", which is what a cron job or CI step that lost its lock
 * should do.
 */
import { constants } from 'node:os';

/** The command failed: a key not found, an unreachable cluster. */
export const EXIT_FAILED = 1;
/** A mistake in the command line. */
export const EXIT_USAGE = 2;
/** The lock or leadership was lost while the command ran (EX_TEMPFAIL). */
export const EXIT_LOST = 75;
/** The command was found but could not be run, as a shell reports it. */
export const EXIT_CANNOT_RUN = 126;
/** The command was not found, as a shell reports it. */
export const EXIT_NOT_FOUND = 127;

/** 128+N for signal N, as a shell reports a process ended by a signal. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** Why etcdkit was asked to stop before its command was done: a signal, or its output closing. */
export class Stopped extends Error {
  override readonly name = 'Stopped';
  /** The signal etcdkit received, passed on to a command it runs. */
  readonly signal: NodeJS.Signals | undefined;
  readonly exitCode: number;

  constructor(message: string, signal: NodeJS.Signals | undefined, exitCode: number) {
    super(message);
    this.signal = signal;
    this.exitCode = exitCode;
  }

  static bySignal(signal: NodeJS.Signals): Stopped {
    return new Stopped(`interrupted by ${signal}`, signal, signalExitCode(signal));
  }
}

/** The exit code of a command stopped for `reason` (an abort signal's reason). */
export function stoppedExitCode(reason: unknown): number {
  return reason instanceof Stopped ? reason.exitCode : signalExitCode('SIGINT');
}
