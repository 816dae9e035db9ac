// What an example process prints, stdout and stderr together, as the tests read it.
import type { ChildProcess } from 'node:child_process';

/** Collects `child`'s stdout and stderr as they come; `text()` is all of it so far. */
export function collectOutput(child: ChildProcess): { text(): string } {
  let output = '';
  const add = (chunk: Buffer | string) => {
    output += chunk;
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return { text: () => output };
}
