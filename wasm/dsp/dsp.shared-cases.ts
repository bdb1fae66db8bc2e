// Cases run both in Node (dsp.test.ts) and inside workerd
// (dsp.workers.test.ts) and compared with the same golden values
// (dsp.golden.json), so the two runtimes are held to the same output.
// Regenerate the golden file after a deliberate change to the DSP:
//   node wasm/dsp/dsp.shared-cases.ts --write
import type { KissFFT } from '../kissfft.ts';
import { AnalysisPipeline } from './pipeline.ts';

/** A deterministic generator (LCG), so both runtimes build identical noise. */
export function seededNoise(n: number, seed: number, amplitude: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * amplitude;
  }
  return out;
}

/** Harmonics at 1/h amplitude; `fadeS` ramps the ends (a cut-off sine is a click). */
export function harmonicTone(sampleRate: number, hz: number, seconds: number, harmonics: number, amplitude: number, fadeS = 0): Float32Array {
  const x = new Float32Array(Math.round(sampleRate * seconds));
  const fade = Math.max(1, Math.round(fadeS * sampleRate));
  for (let i = 0; i < x.length; i++) {
    let v = 0;
    for (let h = 1; h <= harmonics; h++) v += Math.sin((2 * Math.PI * hz * h * i) / sampleRate) / h;
    const g = Math.min(1, i / fade, (x.length - 1 - i) / fade);
    x[i] = v * amplitude * (fadeS > 0 ? g : 1);
  }
  return x;
}

export interface CaseSummary {
  sample_rate: number;
  /** Per frame: [f0 Hz or 0, clarity, rms dB, peak dB, velocity]. */
  frames: number[][];
  onsets: number[];
}

const r = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

function run(kiss: KissFFT, sampleRate: number, x: Float32Array, chunk = 700): CaseSummary {
  const p = AnalysisPipeline.fromPreset(kiss, 'config_default', sampleRate);
  const frames: number[][] = [];
  const onsets: number[] = [];
  const cb = (f: import('./pipeline.ts').AnalysisFrame) => {
    frames.push([f.pitch.voiced ? r(f.pitch.hz) : 0, r(f.pitch.clarity), r(f.dynamics.rmsDb, 3), r(f.dynamics.peakDb, 3), f.dynamics.velocity]);
    if (f.onsetCount) onsets.push(f.onsetSample);
  };
  for (let i = 0; i < x.length; i += chunk) p.push(x.subarray(i, Math.min(x.length, i + chunk)), cb);
  p.flush(cb);
  p.dispose();
  return { sample_rate: sampleRate, frames, onsets };
}

function clickTrack(sampleRate: number, seconds: number, times: number[]): Float32Array {
  const x = seededNoise(Math.round(sampleRate * seconds), 7, 0.001);
  for (const t of times) {
    const at = Math.round(t * sampleRate);
    // A short decaying noise burst, like a stick click.
    const burst = seededNoise(Math.round(sampleRate * 0.01), at, 0.8);
    for (let i = 0; i < burst.length && at + i < x.length; i++) x[at + i] += burst[i] * Math.exp(-i / (sampleRate * 0.002));
  }
  return x;
}

export const CLICK_TIMES = [0.11, 0.36, 0.5, 0.73, 0.9];

export function sharedCases(kiss: KissFFT): Record<string, CaseSummary> {
  const noisyTone = harmonicTone(48_000, 110, 0.5, 10, 0.3);
  const n = seededNoise(noisyTone.length, 3, 0.03);
  for (let i = 0; i < noisyTone.length; i++) noisyTone[i] += n[i];
  const gap = new Float32Array(11_025);
  const twoNotes = new Float32Array(22_050 + 11_025 + 22_050);
  twoNotes.set(harmonicTone(44_100, 440, 0.5, 4, 0.4, 0.03), 0);
  twoNotes.set(gap, 22_050);
  twoNotes.set(harmonicTone(44_100, 659.26, 0.5, 4, 0.4, 0.002), 33_075);
  return {
    sine_440_44k: run(kiss, 44_100, harmonicTone(44_100, 440, 0.4, 1, 0.5)),
    harmonic_110_48k_noisy: run(kiss, 48_000, noisyTone, 1024),
    two_notes_44k: run(kiss, 44_100, twoNotes, 333),
    harmonic_200_8k: run(kiss, 8_000, harmonicTone(8_000, 200, 0.5, 6, 0.5), 160),
    sine_1500_96k: run(kiss, 96_000, harmonicTone(96_000, 1500, 0.25, 1, 0.7), 4096),
    clicks_22k: run(kiss, 22_050, clickTrack(22_050, 1.1, CLICK_TIMES), 256),
    noise_16k: run(kiss, 16_000, seededNoise(8_000, 11, 0.2), 320),
  };
}

/** Differences beyond rounding between two summaries; empty when they agree. */
export function compareCases(got: Record<string, CaseSummary>, want: Record<string, CaseSummary>): string[] {
  const diffs: string[] = [];
  for (const name of Object.keys(want)) {
    const g = got[name];
    const w = want[name];
    if (!g) {
      diffs.push(`${name}: missing`);
      continue;
    }
    if (JSON.stringify(g.onsets) !== JSON.stringify(w.onsets)) diffs.push(`${name}: onsets ${JSON.stringify(g.onsets)} != ${JSON.stringify(w.onsets)}`);
    if (g.frames.length !== w.frames.length) {
      diffs.push(`${name}: ${g.frames.length} frames != ${w.frames.length}`);
      continue;
    }
    for (let i = 0; i < w.frames.length; i++) {
      const a = g.frames[i];
      const b = w.frames[i];
      const tol = [2e-3, 2e-3, 2e-3, 2e-3, 0];
      for (let k = 0; k < b.length; k++) {
        if (Math.abs(a[k] - b[k]) > tol[k]) {
          diffs.push(`${name}: frame ${i} field ${k}: ${a[k]} != ${b[k]}`);
          break;
        }
      }
      if (diffs.length > 20) return diffs;
    }
  }
  return diffs;
}

if (typeof process !== 'undefined' && process.argv?.includes('--write')) {
  const { loadKissFFT } = await import('../kissfft-node.ts');
  const { writeFileSync } = await import('node:fs');
  const out = new URL('./dsp.golden.json', import.meta.url);
  writeFileSync(out, JSON.stringify(sharedCases(await loadKissFFT())) + '\n');
  console.log(`wrote ${out.pathname}`);
}
