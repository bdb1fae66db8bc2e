// CPU time of a process tree from /proc (Linux): how much the local
// server's workerd used while the benchmark drove it, whatever else the
// machine was running.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; comm: string; cpuS: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    // Fields after the command: state ppid … utime (14th overall) stime (15th).
    return { ppid: Number(f[1]), comm, cpuS: (Number(f[11]) + Number(f[12])) / TICKS_PER_S };
  } catch {
    return null;
  }
}

/** Every process under `root` (inclusive) whose command name contains `name`. */
export function descendants(root: number, name: string): number[] {
  const all = new Map<number, { ppid: number; comm: string }>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (s) all.set(pid, s);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    const s = all.get(pid);
    if (s && s.comm.includes(name)) out.push(pid);
    for (const [child, cs] of all) if (cs.ppid === pid) walk(child);
  };
  walk(root);
  return out;
}

export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (stat(pid)?.cpuS ?? 0), 0);
}

export function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}
