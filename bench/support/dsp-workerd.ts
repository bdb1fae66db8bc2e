// The DSP pipeline alone inside workerd: bench/support/dsp-worker (a
// bench-only worker) run with wrangler dev, the decoded files uploaded once
// as raw f32, then POST /run analyses them all, `reps` times, each run
// paired with the same analysis in Node. What is measured is the CPU its
// workerd process spent on each run (from /proc), so it holds only
// analyzeSamples() and one small request: no WAV decoding, no JSON of the
// frames.
import { startLocalServer } from '../../tests/support/local-server.ts';
import { cpuSeconds, descendants, procAvailable } from './proc-cpu.ts';

export interface WorkerdDspRun {
  /** CPU seconds of each run in workerd, in order. */
  cpuS: number[];
  /** CPU seconds of the Node run just before or after each (the order alternates). */
  nodeCpuS: number[];
  /** What the worker found (frames, onsets, voiced frames): compared with Node's by the caller. */
  counts: { files: number; frames: number; onsets: number; voiced: number };
}

const PROJECT = new URL('./dsp-worker/', import.meta.url).pathname;

/**
 * `runNode` analyses the same files in this process and returns its CPU
 * seconds: each workerd run is paired with one, back to back, the order
 * alternating, so their ratio holds even while the shared machine's speed
 * drifts. null where /proc is not readable (CPU time of another process is
 * unknown).
 */
export async function measureWorkerdDsp(files: Float32Array[], rate: number, reps: number, runNode: () => number): Promise<WorkerdDspRun | null> {
  if (!procAvailable()) return null;
  const server = await startLocalServer({ project: PROJECT });
  try {
    for (let i = 0; i < files.length; i++) {
      const x = files[i];
      const res = await fetch(`${server.url}/samples/${i}?rate=${rate}`, { method: 'PUT', body: new Uint8Array(x.buffer as ArrayBuffer, x.byteOffset, x.byteLength) });
      if (!res.ok) throw new Error(`dsp worker: upload HTTP ${res.status}`);
      await res.arrayBuffer();
    }
    const workerd = descendants(server.process.pid!, 'workerd');
    if (!workerd.length) return null;
    const cpuS: number[] = [];
    const nodeCpuS: number[] = [];
    let counts: WorkerdDspRun['counts'] | null = null;
    const inWorkerd = async () => {
      const c0 = cpuSeconds(workerd);
      const res = await fetch(`${server.url}/run`, { method: 'POST' });
      if (!res.ok) throw new Error(`dsp worker: run HTTP ${res.status}: ${await res.text()}`);
      counts = (await res.json()) as WorkerdDspRun['counts'];
      return cpuSeconds(workerd) - c0;
    };
    // One run first to warm the isolate's JIT, as the Node row's first of three does.
    await inWorkerd();
    for (let rep = 0; rep < reps; rep++) {
      if (rep % 2 === 0) {
        nodeCpuS.push(runNode());
        cpuS.push(await inWorkerd());
      } else {
        cpuS.push(await inWorkerd());
        nodeCpuS.push(runNode());
      }
    }
    return { cpuS, nodeCpuS, counts: counts! };
  } finally {
    await server.stop();
  }
}
