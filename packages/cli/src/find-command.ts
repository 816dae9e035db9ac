/**
 * Finds a command on PATH the way a shell does, so a command that cannot run
 * is reported (127 not found, 126 not executable) before any lock is taken.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EXIT_CANNOT_RUN, EXIT_NOT_FOUND } from './exit.js';

export type Found =
  | { path: string }
  | { code: typeof EXIT_CANNOT_RUN | typeof EXIT_NOT_FOUND; problem: string };

export function findCommand(name: string, path: string | undefined): Found {
  // A name with a slash is a path; otherwise every PATH entry is tried (an empty one is ".").
  const candidates = name.includes('/')
    ? [name]
    : (path ?? '').split(delimiter).map((dir) => join(dir || '.', name));
  let denied: string | undefined;
  for (const candidate of candidates) {
    try {
      if (statSync(candidate).isDirectory()) {
        denied ??= 'is a directory';
        continue;
      }
    } catch {
      continue;
    }
    try {
      accessSync(candidate, constants.X_OK);
      return { path: candidate };
    } catch {
      denied ??= 'permission denied';
    }
  }
  if (denied) return { code: EXIT_CANNOT_RUN, problem: `${name}: ${denied}` };
  return { code: EXIT_NOT_FOUND, problem: `${name}: command not found` };
}
