// Node against workerd, piece by piece: each kernel of dsp-kernels.ts run in
// this process and inside workerd (the bench worker's POST /kernel)
// alternately, `rounds` times; prints the best µs per hop of each, after
// the first round (JIT warm-up). CPU from process.cpuUsage() and /proc.
//
//   node bench/support/dsp-runtimes.ts [rounds]
import { loadavg } from 'node:os';
import { loadKissFFT } from '../../wasm/kissfft-node.ts';
import { startLocalServer } from '../../tests/support/local-server.ts';
import { cpuSeconds, descendants, procAvailable } from './proc-cpu.ts';
import { KERNELS, runKernel, type KernelName } from './dsp-kernels.ts';

/** Hops per run: about half a second of CPU each. */
const HOPS: Record<KernelName, number> = { fft2048: 40_000, fft1024: 80_000, spectrum: 20_000, decimator: 80_000, pipeline: 15_000, f32loop: 200_000 };

if (!procAvailable()) throw new Error('needs /proc to read the CPU time of workerd');
const rounds = Math.max(2, Number(process.argv[2] ?? 5));
const kiss = await loadKissFFT();
const server = await startLocalServer({ project: new URL('./dsp-worker/', import.meta.url).pathname });
const load0 = loadavg()[0];
try {
  const workerd = descendants(server.process.pid!, 'workerd');
  const us: Record<string, { node: number[]; workerd: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const k of KERNELS) {
      const hops = HOPS[k];
      const c0 = process.cpuUsage();
      const inNode = runKernel(kiss, k, hops);
      const c = process.cpuUsage(c0);
      const w0 = cpuSeconds(workerd);
      const res = await fetch(`${server.url}/kernel?name=${k}&hops=${hops}`, { method: 'POST' });
      const { check } = (await res.json()) as { check: number };
      const w = cpuSeconds(workerd) - w0;
      if (check !== inNode) throw new Error(`${k}: workerd's checksum ${check} is not Node's ${inNode}`);
      if (r === 0) continue;
      (us[k] ??= { node: [], workerd: [] }).node.push((c.user + c.system) / hops);
      us[k].workerd.push((w * 1e6) / hops);
    }
  }
  console.log(`kernel      Node µs/hop  workerd µs/hop  workerd/Node   (best of ${rounds - 1}; load ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)})`);
  for (const k of KERNELS) {
    const n = Math.min(...us[k].node);
    const w = Math.min(...us[k].workerd);
    console.log(`${k.padEnd(10)}  ${n.toFixed(2).padStart(11)}  ${w.toFixed(2).padStart(14)}  ${(w / n).toFixed(2).padStart(12)}`);
  }
} finally {
  await server.stop();
}
