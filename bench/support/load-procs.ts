// Memory of a process tree, for the load benchmark: the local server is
// wrangler (Node) with workerd below it, so the tree's RSS is what the
// runtime holds. Linux /proc only.
import { readFileSync } from 'node:fs';
import { processTree } from '../../tests/support/process-tree.ts';

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** RSS in MiB of a process and its descendants, split into workerd and the rest; more than one workerd means the runtime was replaced. */
export function treeMemory(root: number): { workerd_mib: number; wrangler_mib: number; workerd_processes: number } {
  let workerd = 0;
  let rest = 0;
  let processes = 0;
  for (const { pid, comm } of processTree(root)) {
    const kib = rssKiB(pid);
    if (comm.startsWith('workerd')) {
      workerd += kib;
      processes++;
    } else rest += kib;
  }
  return { workerd_mib: workerd / 1024, wrangler_mib: rest / 1024, workerd_processes: processes };
}
