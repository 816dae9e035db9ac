/**
 * What every command receives: its parsed arguments and where to print, and
 * the small helpers they share for reading flags and printing status.
 */
import { UsageError } from './config.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Aborts on Ctrl-C / SIGTERM / SIGHUP, or when stdout is closed; the reason is a `Stopped`. */
  signal: AbortSignal;
}

export interface Parsed {
  positionals: string[];
  /** Words after `--`. */
  command: string[];
  values: Record<string, string | boolean | undefined>;
}

export function need(parsed: Parsed, count: number, usage: string): string[] {
  if (parsed.positionals.length !== count) throw new UsageError(`usage: ${usage}`);
  return parsed.positionals;
}

/** A flag given in seconds; `whole` refuses fractions. */
export function seconds(p: Parsed, flag: string, fallback: number, whole: boolean): number;
export function seconds(
  p: Parsed,
  flag: string,
  fallback: undefined,
  whole: boolean,
): number | undefined;
export function seconds(
  p: Parsed,
  flag: string,
  fallback: number | undefined,
  whole: boolean,
): number | undefined {
  const given = p.values[flag];
  if (given === undefined) return fallback;
  const n = Number(given);
  const ok =
    given !== '' && Number.isFinite(n) && (whole ? Number.isSafeInteger(n) && n > 0 : n >= 0);
  if (!ok) throw new UsageError(`--${flag} must be a ${whole ? 'whole ' : ''}number of seconds`);
  return n;
}

/**
 * A status line on stderr (stdout is for data, or belongs to the command run
 * under a lock): text, or with `--json` the fields as one JSON object.
 */
export function status(
  p: Parsed,
  io: Io,
  text: string,
  fields: Record<string, string | number | undefined>,
): void {
  io.err(p.values.json ? JSON.stringify(fields) : text);
}
