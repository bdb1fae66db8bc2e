// Whole-file analysis: the document `roomtone analyze --json` prints and
// POST /api/v1/analyze returns, from the same pipeline the streams use.
//
//   { sample_rate, hop_s, frames: [{ t, f0, confidence, rms_db }], onsets: [seconds…] }
//
// `f0` is Hz or null when unvoiced; `t` is the centre of each frame. Files
// outside 8–96 kHz are resampled first (to 48 kHz from above, 16 kHz from
// below); `sample_rate` still reports the file's rate.
import type { KissFFT } from '../kissfft.ts';
import { DSP_MAX_RATE, DSP_MIN_RATE, type ConfigOverrides, type PresetName } from './config.ts';
import { AnalysisPipeline, type AnalysisFrame } from './pipeline.ts';
import { resample } from './resample.ts';

export interface AnalysisDocumentFrame {
  t: number;
  f0: number | null;
  confidence: number;
  rms_db: number;
}

export interface AnalysisDocument {
  sample_rate: number;
  /** Seconds between frames. */
  hop_s: number;
  frames: AnalysisDocumentFrame[];
  onsets: number[];
}

/** The lowest file rate analysed (resampled up to 16 kHz). */
export const OFFLINE_MIN_RATE = 1_000;

export class OfflineRateError extends RangeError {
  constructor(rate: number) {
    super(`sample rate ${rate} Hz is too low to analyse; at least ${OFFLINE_MIN_RATE} Hz is needed`);
    this.name = 'OfflineRateError';
  }
}

const round = (v: number, digits: number) => {
  const p = 10 ** digits;
  return Math.round(v * p) / p;
};

export interface AnalyzeOptions {
  preset?: PresetName;
  overrides?: ConfigOverrides;
}

export function analysisRate(fileRate: number): number {
  if (fileRate < OFFLINE_MIN_RATE) throw new OfflineRateError(fileRate);
  if (fileRate > DSP_MAX_RATE) return 48_000;
  if (fileRate < DSP_MIN_RATE) return 16_000;
  return fileRate;
}

export function analyzeSamples(kiss: KissFFT, samples: Float32Array, sampleRate: number, opts: AnalyzeOptions = {}): AnalysisDocument {
  const steps = analysisSteps(kiss, samples, sampleRate, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Pushes input[from..from+n) through `chunk` (n <= its length), non-finite
 * samples (a float WAV can hold NaN) read as silence. A plain function, not
 * code in the generator below: V8 compiles loops inlined into a generator
 * (this copy and push()'s own) far worse; in a profile they were 5% of a
 * whole-file analysis.
 */
function pushFinite(pipeline: AnalysisPipeline, input: Float32Array, from: number, n: number, chunk: Float32Array, onFrame: (f: AnalysisFrame) => void): void {
  for (let j = 0; j < n; j++) {
    const v = input[from + j];
    chunk[j] = Number.isFinite(v) ? v : 0;
  }
  pipeline.push(n === chunk.length ? chunk : chunk.subarray(0, n), onFrame);
}

/**
 * The same analysis, in steps: it yields the fraction done after each block
 * of audio, so a caller can report progress (or yield the thread) between
 * blocks, and returns the document.
 */
export function* analysisSteps(kiss: KissFFT, samples: Float32Array, sampleRate: number, opts: AnalyzeOptions = {}): Generator<number, AnalysisDocument> {
  const rate = analysisRate(sampleRate);
  const input = rate === sampleRate ? samples : resample(samples, sampleRate, rate);
  const pipeline = AnalysisPipeline.fromPreset(kiss, opts.preset ?? 'config_default', rate, opts.overrides);
  const frames: AnalysisDocumentFrame[] = [];
  const onsets: number[] = [];
  const onFrame = (f: AnalysisFrame) => {
    frames.push({
      t: round(f.time, 6),
      f0: f.pitch.voiced ? round(f.pitch.hz, 3) : null,
      confidence: round(f.pitch.clarity, 3),
      rms_db: round(f.dynamics.rmsDb, 2),
    });
    if (f.onsetCount) onsets.push(round(f.onsetTime, 5));
  };
  try {
    const chunk = new Float32Array(8192);
    for (let i = 0; i < input.length; i += chunk.length) {
      const n = Math.min(chunk.length, input.length - i);
      pushFinite(pipeline, input, i, n, chunk, onFrame);
      yield (i + n) / input.length;
    }
    pipeline.flush(onFrame);
  } finally {
    pipeline.dispose();
  }
  return { sample_rate: sampleRate, hop_s: round(pipeline.config.hopSize / rate, 9), frames, onsets };
}
