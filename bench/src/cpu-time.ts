/**
 * CPU time read from /proc: of another process (the etcd server, a child),
 * utime + stime of all its threads, dead ones included; and of the whole
 * machine, to see load that is none of ours. Both count clock ticks, 10 ms on
 * Linux, so the windows measured last a second or more.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function microsPerTick(): number {
  if (ticksPerSecond === undefined) {
    let ticks = 100;
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // Linux has used 100 Hz for user-visible ticks for decades.
    }
    ticksPerSecond = ticks;
  }
  return 1e6 / ticksPerSecond;
}

/** User + system CPU a process has used so far, µs. */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name.
  return (Number(fields[11]) + Number(fields[12])) * microsPerTick();
}

/** CPU every process of the machine has used so far, µs: all but idle and iowait. */
export function machineBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const ticks = [user, nice, system, irq, softirq, steal].reduce<number>((a, b) => a + (b ?? 0), 0);
  return ticks * microsPerTick();
}
