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

/**
 * Of wrangler dev's workerd processes, the one that runs the worker and its
 * Durable Objects (started with the inspector), not the proxy in front of
 * it, which a deployment does not have.
 */
export function runsWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--inspector-addr');
  } catch {
    return false;
  }
}

export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuOf(pid) ?? 0), 0);
}

/** The CPU seconds each group of processes used while `run` ran. */
export async function cpuDuring(groups: number[][], run: () => Promise<unknown>): Promise<number[]> {
  const before = groups.map(cpuSeconds);
  await run();
  return groups.map((pids, i) => cpuSeconds(pids) - before[i]);
}

export function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}
