/**
 * Runs the built `etcdkit` binary against a test cluster and collects what it
 * prints; also tells whether a process it started is still running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
export const bin = join(dirname(require.resolve('@etcdkit/cli/package.json')), 'dist', 'main.js');

export interface Result {
  code: number;
  /** The signal that ended etcdkit itself, if one did. */
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

export interface Running {
  child: ChildProcess;
  done: Promise<Result>;
  /** Resolves with everything printed on stdout once `test` accepts it. */
  output(test: (out: string) => boolean): Promise<string>;
  /** What etcdkit has printed on stderr so far. */
  errors(): string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Text written to etcdkit's stdin (then closed); by default stdin is /dev/null. */
  input?: string;
}

export function cli(endpoint: string, args: string[], options: CliOptions = {}): Running {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ETCDKIT_ENDPOINTS: endpoint, ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  let out = '';
  let err = '';
  const waiting = new Set<() => void>();
  child.stdout!.on('data', (c) => {
    out += c;
    for (const check of waiting) check();
  });
  child.stderr!.on('data', (c) => {
    err += c;
  });
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, out, err })),
  );
  const output = (test: (out: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!test(out)) return;
        waiting.delete(check);
        resolve(out);
      };
      waiting.add(check);
      check();
      void done.then((r) => {
        if (waiting.delete(check)) reject(new Error(`etcdkit ended (${r.code}): ${r.err}`));
      });
    });
  return { child, done, output, errors: () => err };
}

/** False once `pid` has ended; a zombie nobody has reaped yet counts as ended. */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // The state follows the command name in parentheses: "123 (sleep) Z ...".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}
