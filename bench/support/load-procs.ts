// Memory of a process tree, for the load benchmark: the local server is
// wrangler (Node) with workerd below it, so the tree's RSS is what the
// runtime holds. Linux /proc only.
import { readFileSync, readdirSync } from 'node:fs';

function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: fields start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function name(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** RSS in MiB of a process and its descendants, split into workerd and the rest; more than one workerd means the runtime was replaced. */
export function treeMemory(root: number): { workerd_mib: number; wrangler_mib: number; workerd_processes: number } {
  let workerd = 0;
  let rest = 0;
  let processes = 0;
  const queue = [root];
  while (queue.length) {
    const pid = queue.pop()!;
    const kib = rssKiB(pid);
    if (name(pid).startsWith('workerd')) {
      workerd += kib;
      processes++;
    } else rest += kib;
    queue.push(...children(pid));
  }
  return { workerd_mib: workerd / 1024, wrangler_mib: rest / 1024, workerd_processes: processes };
}
