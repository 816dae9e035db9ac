/**
 * Starts a command that must not outlive etcdkit: if etcdkit is killed, even
 * with SIGKILL, the command must not run on unsupervised while the lease
 * expires and the next holder starts.
 *
 * How it works: where setpriv(1) from util-linux is on PATH (every Debian and
 * most Linux systems), it sets PR_SET_PDEATHSIG to SIGKILL and then execs the
 * command, which keeps its pid: the kernel kills it the moment etcdkit ends.
 * (The death signal follows the thread that spawned; Node spawns from its main
 * thread, which lives as long as the process.) Elsewhere a small watchdog
 * process is started beside the command with a pipe from etcdkit as its
 * stdin; the kernel closes the pipe however etcdkit ends, and the watchdog
 * then kills the command. The watchdog is stopped as soon as the command
 * exits, so it never signals a recycled pid. Either way only the command's own
 * process is covered, not processes it starts in the background.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findCommand } from './find-command.js';

const WATCHDOG = fileURLToPath(new URL('./watchdog.js', import.meta.url));

export function spawnTied(argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [command, ...args] = argv as [string, ...string[]];
  const setpriv = process.platform === 'linux' ? findCommand('setpriv', env.PATH) : undefined;
  if (setpriv && 'path' in setpriv) {
    return spawn(setpriv.path, ['--pdeathsig', 'KILL', '--', command, ...args], {
      stdio: 'inherit',
      env,
    });
  }
  const child = spawn(command, args, { stdio: 'inherit', env });
  if (child.pid === undefined) return child; // it did not start: 'error' follows
  // Detached: its own session, so a Ctrl-C at the terminal does not reach it.
  const watchdog = spawn(process.execPath, [WATCHDOG, String(child.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  child.once('exit', () => {
    watchdog.kill('SIGKILL');
    watchdog.stdin?.destroy();
  });
  watchdog.unref();
  return child;
}
