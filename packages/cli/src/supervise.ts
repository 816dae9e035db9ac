/**
 * Runs a command while a lock or leadership is held, and stops it when that
 * is lost.
 *
 * How it works: the command starts tied to etcdkit (see tied-child.ts), with
 * what is held in its environment. When the hold is lost, the command gets
 * SIGTERM, and SIGKILL after the grace period; when etcdkit is interrupted,
 * the command gets the same signal, then SIGKILL after the grace period. Once
 * the command has ended, the hold is given back. If giving it back shows it
 * was gone already (lost unnoticed, or in the last moment), the run counts as
 * lost too: the command may have overlapped with the next holder.
 */

import type { Io } from './command.js';
import { EXIT_CANNOT_RUN, EXIT_LOST, EXIT_NOT_FOUND, Stopped, signalExitCode } from './exit.js';
import { findCommand } from './find-command.js';
import { spawnTied } from './tied-child.js';

/** What a command runs under. */
export interface Held {
  /** `lock` or `leadership`, and its name, for messages. */
  readonly what: string;
  readonly name: string;
  /** Environment variables that tell the command what it holds. */
  readonly env: Record<string, string>;
  /** Aborts when the hold is lost; the reason says how. */
  readonly lost: AbortSignal;
  /** Gives it back; resolves false if it was gone already. */
  release(): Promise<boolean>;
}

export interface SuperviseOptions {
  held: Held;
  graceMs: number;
  /** etcdkit's own stop signal: its reason is passed on to the command. */
  signal: AbortSignal;
  report(text: string, fields: Record<string, string | number | undefined>): void;
}

/** Runs `argv` under `held`; resolves with etcdkit's exit code. */
export async function supervise(argv: string[], o: SuperviseOptions): Promise<number> {
  const { held } = o;
  const command = argv[0]!;
  const child = spawnTied(argv, { ...process.env, ...held.env });
  const ended = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? signalExitCode(signal) : (code ?? 1)));
    child.once('error', (err: NodeJS.ErrnoException) => {
      o.report(`cannot run ${command}: ${err.message}`, { event: 'error', message: err.message });
      resolve(err.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
    });
  });
  let why: 'lost' | Stopped | undefined;
  let killer: NodeJS.Timeout | undefined;
  const stop = (signal: NodeJS.Signals) => {
    child.kill(signal);
    killer = setTimeout(() => child.kill('SIGKILL'), o.graceMs);
  };
  const onLost = () => {
    if (why) return;
    why = 'lost';
    const reason = (held.lost.reason as Error | undefined)?.message ?? 'lost';
    o.report(`${held.what} ${held.name} lost (${reason}): stopping ${command}`, {
      event: 'lost',
      reason,
    });
    stop('SIGTERM');
  };
  const onStop = () => {
    if (why) return;
    const reason = o.signal.reason;
    why = reason instanceof Stopped ? reason : Stopped.bySignal('SIGTERM');
    stop(why.signal ?? 'SIGTERM');
  };
  held.lost.addEventListener('abort', onLost, { once: true });
  o.signal.addEventListener('abort', onStop, { once: true });
  if (held.lost.aborted) onLost();
  else if (o.signal.aborted) onStop();
  let code: number;
  try {
    code = await ended;
  } finally {
    clearTimeout(killer);
    held.lost.removeEventListener('abort', onLost);
    o.signal.removeEventListener('abort', onStop);
  }
  let lost = held.lost.aborted;
  try {
    if (!(await held.release())) lost = true;
  } catch (err) {
    const message = (err as Error).message;
    o.report(`cannot give back ${held.what} ${held.name}: ${message}`, {
      event: 'error',
      message,
    });
  }
  if (why instanceof Stopped) return why.exitCode;
  if (!lost) return code;
  if (why !== 'lost') {
    o.report(`${held.what} ${held.name} was lost while ${command} ran (it exited ${code})`, {
      event: 'lost',
      exitCode: code,
    });
  }
  return EXIT_LOST;
}

/** Reports a command that cannot run and returns its exit code (126 or 127), before anything is taken. */
export function cannotRun(command: string, io: Io): number | undefined {
  const found = findCommand(command, process.env.PATH);
  if ('path' in found) return undefined;
  io.err(`etcdkit: ${found.problem}`);
  return found.code;
}
