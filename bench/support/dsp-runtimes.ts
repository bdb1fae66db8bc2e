// Node against workerd, piece by piece: each kernel of dsp-kernels.ts run in
// this process and inside workerd (the bench worker's POST /kernel) back to
// back, the order alternating, `rounds` times. The machine is shared and its
// speed drifts by tens of percent within minutes, so what is reported is
// the median of the per-round ratios workerd/Node (with quartiles), beside
// the best µs per hop of each. The first round (JIT warm-up) is not counted.
// CPU from process.cpuUsage() and /proc.
//
//   node bench/support/dsp-runtimes.ts [rounds]
import { loadavg } from 'node:os';
import { loadKissFFT } from '../../wasm/kissfft-node.ts';
import { startLocalServer } from '../../tests/support/local-server.ts';
import { cpuSeconds, descendants, procAvailable } from './proc-cpu.ts';
import { KERNELS, runKernel, type KernelName } from './dsp-kernels.ts';
import { quantile } from './stats.ts';

/** Hops per run: about a quarter of a second of CPU each (/proc counts in 10 ms ticks). */
const HOPS: Record<KernelName, number> = { fft2048: 20_000, fft1024: 40_000, spectrum: 10_000, decimator: 60_000, pipeline: 6_000, f32loop: 100_000 };

if (!procAvailable()) throw new Error('needs /proc to read the CPU time of workerd');
const rounds = Math.max(2, Number(process.argv[2] ?? 5));
const kiss = await loadKissFFT();
const server = await startLocalServer({ project: new URL('./dsp-worker/', import.meta.url).pathname });
const load0 = loadavg()[0];
try {
  const workerd = descendants(server.process.pid!, 'workerd');
  const us: Record<string, { node: number[]; workerd: number[] }> = {};
  const inWorkerd = async (k: KernelName, hops: number): Promise<{ cpuS: number; check: number }> => {
    const w0 = cpuSeconds(workerd);
    const res = await fetch(`${server.url}/kernel?name=${k}&hops=${hops}`, { method: 'POST' });
    const { check } = (await res.json()) as { check: number };
    return { cpuS: cpuSeconds(workerd) - w0, check };
  };
  const inNode = (k: KernelName, hops: number): { cpuS: number; check: number } => {
    const c0 = process.cpuUsage();
    const check = runKernel(kiss, k, hops);
    const c = process.cpuUsage(c0);
    return { cpuS: (c.user + c.system) / 1e6, check };
  };
  for (let r = 0; r < rounds; r++) {
    for (const k of KERNELS) {
      const hops = HOPS[k];
      let n: { cpuS: number; check: number };
      let w: { cpuS: number; check: number };
      if (r % 2 === 0) {
        n = inNode(k, hops);
        w = await inWorkerd(k, hops);
      } else {
        w = await inWorkerd(k, hops);
        n = inNode(k, hops);
      }
      if (w.check !== n.check) throw new Error(`${k}: workerd's checksum ${w.check} is not Node's ${n.check}`);
      if (r === 0) continue;
      (us[k] ??= { node: [], workerd: [] }).node.push((n.cpuS * 1e6) / hops);
      us[k].workerd.push((w.cpuS * 1e6) / hops);
    }
  }
  console.log(`kernel      Node µs/hop  workerd µs/hop  workerd/Node: median (quartiles)   (best of ${rounds - 1}; load ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)})`);
  for (const k of KERNELS) {
    const { node, workerd: wd } = us[k];
    const ratios = node.map((v, i) => wd[i] / v);
    console.log(`${k.padEnd(10)}  ${Math.min(...node).toFixed(2).padStart(11)}  ${Math.min(...wd).toFixed(2).padStart(14)}  ${quantile(ratios, 0.5).toFixed(2).padStart(8)} (${quantile(ratios, 0.25).toFixed(2)}–${quantile(ratios, 0.75).toFixed(2)})`);
  }
} finally {
  await server.stop();
}
