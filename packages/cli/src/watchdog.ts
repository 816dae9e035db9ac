/**
 * The watchdog beside a command when setpriv is missing (see tied-child.ts):
 * its stdin is a pipe from etcdkit, which the kernel closes however etcdkit
 * ends, SIGKILL included. Then the command (pid in argv) is killed.
 */
const pid = Number(process.argv[2]);
const killCommand = () => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  process.exit(0);
};
process.stdin.on('end', killCommand);
process.stdin.on('error', killCommand);
process.stdin.resume();
