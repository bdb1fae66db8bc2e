// CPU time of a process tree (its times from /proc, Linux): how much the
// local server's workerd used while the benchmark drove it, whatever else
// the machine was running.
import { readFileSync } from 'node:fs';
import { processTree } from '../../tests/support/process-tree.ts';

const TICKS_PER_S = 100; // USER_HZ on Linux

function cpuOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state ppid … utime (14th overall) stime (15th).
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
  } catch {
    return null;
  }
}

/** Every process under `root` (inclusive) whose command name contains `name`. */
export function descendants(root: number, name: string): number[] {
  return processTree(root).filter((p) => p.comm.includes(name)).map((p) => p.pid);
}

export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuOf(pid) ?? 0), 0);
}

export function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}
