// Pieces of the analysis pipeline run on their own, the same code in Node
// and inside workerd (bench/support/dsp-worker's POST /kernel), so the two
// runtimes can be compared piece by piece: the WASM FFT, the JS around it.
// Each kernel runs `hops` times on a fixed signal and returns a checksum
// (so nothing is optimised away, and both runtimes can be seen to agree).
import type { KissFFT } from '../../wasm/kissfft.ts';
import { RealFFT } from '../../wasm/fft.ts';
import { SharedSpectrum } from '../../wasm/dsp/spectrum.ts';
import { Decimator } from '../../wasm/dsp/decimator.ts';
import { AnalysisPipeline } from '../../wasm/dsp/pipeline.ts';
import type { AnalysisDocument } from '../../wasm/dsp/offline.ts';

export const KERNELS = ['fft2048', 'fft1024', 'spectrum', 'decimator', 'pipeline', 'f32loop'] as const;
export type KernelName = (typeof KERNELS)[number];

const RATE = 44_100;

function signal(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * 220 * i) / RATE) + 0.1 * Math.sin((2 * Math.PI * 661 * i) / RATE) + 0.01 * Math.sin(i * 1.7);
  return x;
}

export function runKernel(kiss: KissFFT, name: KernelName, hops: number): number {
  let check = 0;
  if (name === 'fft2048' || name === 'fft1024') {
    const n = name === 'fft2048' ? 2048 : 1024;
    const fft = new RealFFT(kiss, n);
    const x = signal(n / 2);
    fft.input.set(x);
    for (let h = 0; h < hops; h++) check += fft.forward()[2 * (h & 63)];
    fft.dispose();
  } else if (name === 'spectrum') {
    // The shared spectrum of a 1024-sample window at 22.05 kHz: both transforms and the JS around them.
    const s = new SharedSpectrum(kiss, 1024, RATE / 2);
    const x = signal(1024);
    for (let h = 0; h < hops; h++) {
      s.analyze(x);
      check += s.acf[h & 255] + s.power[h & 255];
    }
    s.dispose();
  } else if (name === 'decimator') {
    const d = new Decimator(2);
    const x = signal(512);
    const out = new Float32Array(257);
    for (let h = 0; h < hops; h++) check += out[d.process(x, 0, 512, out, 0) - 1];
  } else if (name === 'pipeline') {
    const p = AnalysisPipeline.fromPreset(kiss, 'config_default', RATE);
    const x = signal(512);
    for (let h = 0; h < hops; h++) {
      const f = p.process(x);
      if (f) check += f.pitch.hz + f.levelDb;
    }
    p.dispose();
  } else {
    // Plain JS over typed arrays, no WASM: float32 loads and stores, a double sum.
    const x = signal(1024);
    const y = new Float32Array(1024);
    for (let h = 0; h < hops; h++) {
      let s = 0;
      for (let i = 0; i < 1024; i++) {
        const v = x[i] * 0.5 + y[(i + h) & 1023];
        y[i] = v;
        s += v * v;
      }
      check += s;
    }
  }
  return check;
}

/** What Node and workerd must agree on after analysing the same files: frames, onsets and voiced frames. */
export function analysisCounts(docs: AnalysisDocument[]): { frames: number; onsets: number; voiced: number } {
  const counts = { frames: 0, onsets: 0, voiced: 0 };
  for (const d of docs) {
    counts.frames += d.frames.length;
    counts.onsets += d.onsets.length;
    for (const f of d.frames) if (f.f0 !== null) counts.voiced++;
  }
  return counts;
}
