// The processes under a root, with their command names: what stopping or
// crashing the local server must kill (bin/wrangler.js, wrangler, workerd),
// and what the benchmarks read CPU time and memory of. `ps` rather than
// /proc, so `npm start` stops cleanly on macOS too.
import { execFileSync } from 'node:child_process';

export interface TreeProcess {
  pid: number;
  /** Command name as `ps` gives it (Linux truncates it to 15 characters). */
  comm: string;
}

/** `root` and every process under it, parents before their children. */
export function processTree(root: number): TreeProcess[] {
  const children = new Map<number, TreeProcess[]>();
  let rootComm = '';
  for (const line of execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' }).trim().split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const p = { pid: Number(m[1]), comm: m[3].trim() };
    if (p.pid === root) rootComm = p.comm;
    const ppid = Number(m[2]);
    children.set(ppid, [...(children.get(ppid) ?? []), p]);
  }
  const out: TreeProcess[] = [];
  const walk = (p: TreeProcess) => {
    out.push(p);
    for (const c of children.get(p.pid) ?? []) walk(c);
  };
  walk({ pid: root, comm: rootComm });
  return out;
}
