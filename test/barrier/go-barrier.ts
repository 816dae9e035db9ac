/**
 * The Go side of the interop tests: test/go/barrier/main.go, built against
 * Debian's etcd 3.4 Go sources (golang-etcd-server-dev) with no network, and
 * run with a command per process; it prints one line per step it finishes.
 *
 * The binary is cached in the temporary directory under the hash of its
 * source and build settings, so only the first run (or a changed source)
 * pays for the build: two to three minutes with a cold Go build cache, half
 * a minute with a warm one.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SOURCE = fileURLToPath(new URL('../../go/barrier/main.go', import.meta.url));
const GOPATH = process.env.ETCDKIT_GOPATH ?? '/usr/share/gocode';
const RECIPES = join(GOPATH, 'src', 'go.etcd.io', 'etcd', 'contrib', 'recipes');
/**
 * No cgo: a machine set up with Debian's golang-go alone, without its
 * recommended C compiler, builds it too.
 */
const BUILD_ENV = { GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', CGO_ENABLED: '0' };

/** Builds the Go program unless a binary of the same source is cached; resolves with its path. */
export async function buildGoBarrier(): Promise<{ path: string; builtMs: number | undefined }> {
  if (!existsSync(RECIPES)) {
    throw new Error(
      `etcd's Go sources are missing (${RECIPES}): run scripts/setup.sh, or install Debian's golang-go and golang-etcd-server-dev, or set ETCDKIT_GOPATH`,
    );
  }
  const hash = createHash('sha256')
    .update(JSON.stringify(BUILD_ENV))
    .update(readFileSync(SOURCE))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), 'etcdkit-go');
  const path = join(dir, `barrier-${hash}`);
  if (existsSync(path)) return { path, builtMs: undefined };
  mkdirSync(dir, { recursive: true });
  const partial = `${path}.${process.pid}`;
  const start = performance.now();
  await promisify(execFile)('go', ['build', '-o', partial, SOURCE], {
    env: { ...process.env, ...BUILD_ENV, GOPATH, GOCACHE: join(dir, 'cache') },
    timeout: 15 * 60_000,
  });
  // Renamed into place whole, so a concurrent run never starts a half-written binary.
  renameSync(partial, path);
  return { path, builtMs: Math.round(performance.now() - start) };
}

export interface GoRun {
  readonly child: ChildProcess;
  /** Lines printed on stdout so far. */
  readonly lines: string[];
  /** Resolves once `line` has been printed; rejects if the process exits first. */
  printed(line: string): Promise<void>;
  /** Resolves with the exit code (and stderr) once the process has exited. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
  readonly hasExited: boolean;
}

const running = new Set<ChildProcess>();

/** Kills every Go process still running (for `after`). */
export function killGoRuns(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Starts the Go program: `args` after the connection flags. */
export function runGo(bin: string, endpoint: string, args: string[], ttl = 10): GoRun {
  const child = spawn(bin, [`-endpoints=${endpoint}`, `-ttl=${ttl}`, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let hasExited = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    child.stdout!.emit('line');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'close').then(([code]) => {
    hasExited = true;
    running.delete(child);
    child.stdout!.emit('line');
    return { code: code as number | null, stderr };
  });
  return {
    child,
    lines,
    exited,
    get hasExited() {
      return hasExited;
    },
    async printed(line: string) {
      while (!lines.includes(line)) {
        if (hasExited) {
          throw new Error(`the Go program exited before printing "${line}": ${stderr}`);
        }
        await once(child.stdout!, 'line');
      }
    },
  };
}
