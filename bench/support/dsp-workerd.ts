// The DSP pipeline alone inside workerd: bench/support/dsp-worker (a
// bench-only worker) run with wrangler dev, the decoded files uploaded once
// as raw f32, then POST /run analyses them all, `reps` times. What is
// measured is the CPU its workerd process spent on each run (from /proc),
// so it holds only analyzeSamples() and one small request: no WAV decoding,
// no JSON of the frames.
import { startLocalServer } from '../../tests/support/local-server.ts';
import { cpuSeconds, descendants, procAvailable } from './proc-cpu.ts';

export interface WorkerdDspRun {
  /** CPU seconds of each run, in order. */
  cpuS: number[];
  /** What the worker found (frames, onsets, voiced frames): compared with Node's by the caller. */
  counts: { files: number; frames: number; onsets: number; voiced: number };
}

const PROJECT = new URL('./dsp-worker/', import.meta.url).pathname;

/** null where /proc is not readable (CPU time of another process is unknown). */
export async function measureWorkerdDsp(files: Float32Array[], rate: number, reps: number): Promise<WorkerdDspRun | null> {
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
    let counts: WorkerdDspRun['counts'] | null = null;
    // One run first to warm the isolate's JIT, as the Node row's first of three does.
    for (let rep = -1; rep < reps; rep++) {
      const c0 = cpuSeconds(workerd);
      const res = await fetch(`${server.url}/run`, { method: 'POST' });
      if (!res.ok) throw new Error(`dsp worker: run HTTP ${res.status}: ${await res.text()}`);
      counts = (await res.json()) as WorkerdDspRun['counts'];
      const c = cpuSeconds(workerd) - c0;
      if (rep >= 0) cpuS.push(c);
    }
    return { cpuS, counts: counts! };
  } finally {
    await server.stop();
  }
}
