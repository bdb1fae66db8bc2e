// AnalysisPipeline: the façade the DOs, the CLI, the tests and the benchmark
// use. Push mono float samples of any length; every hop the window is
// analysed once (SharedSpectrum) and that one pass feeds pitch, onsets and
// dynamics, whose results are written into one preallocated AnalysisFrame.
//
//   const p = AnalysisPipeline.fromPreset(kiss, 'config_default', 48_000);
//   p.push(samples, (f) => console.log(f.time, f.pitch.voiced && f.pitch.hz, f.onsetCount && f.onsetTime));
//   p.flush(onFrame);   // end of stream: pads with zeros so the last samples get frames
//   p.dispose();
//
// Framing: frame k is centred on stream sample k·hop (its window covers
// [k·hop - N/2, k·hop + N/2), the stream being preceded by silence), so frame
// times need no correction and frame 0 is at t = 0. A frame is ready once
// sample k·hop + N/2 has arrived: the pipeline's latency is half a window.
import type { KissFFT } from '../kissfft.ts';
import { preset, validateConfig, type AnalysisConfig, type ConfigOverrides, type PresetName } from './config.ts';
import { SharedSpectrum } from './spectrum.ts';
import { PitchTracker, type PitchResult } from './pitch.ts';
import { OnsetDetector } from './onset.ts';
import { DynamicsMeter, DB_FLOOR, type DynamicsResult } from './dynamics.ts';
import { Decimator } from './decimator.ts';

/** Input at 32 kHz and above is halved (twice at 64 kHz and above) before the spectrum. */
export function analysisDecimation(sampleRate: number, windowSize: number, hopSize: number): number {
  let d = 1;
  while (sampleRate / (2 * d) >= 16_000 && d < 4 && hopSize % (2 * d) === 0 && windowSize / (2 * d) >= 256) d *= 2;
  return d;
}

export interface AnalysisFrame {
  /** Frames since the start (or the last reset). */
  index: number;
  /** Stream sample at the centre of the window. */
  sample: number;
  /** `sample` in seconds. */
  time: number;
  /** RMS of the whole window, dBFS. */
  levelDb: number;
  pitch: PitchResult;
  dynamics: DynamicsResult;
  /** 1 when this frame confirmed an onset (it lies at or before this frame), else 0. */
  onsetCount: number;
  /** Stream sample of that onset. */
  onsetSample: number;
  onsetTime: number;
}

export type FrameCallback = (frame: AnalysisFrame) => void;

/**
 * Where within the detecting frame's window an onset is placed, as a
 * fraction of the hop after the frame centre: the flux of a log-compressed
 * Hann spectrum peaks when a new sound has just entered the window's right
 * half. Calibrated on click tracks and rendered notes (tests/workers and
 * wasm/dsp tests hold it to 20 ms).
 */
const ONSET_OFFSET_HOPS = 0.0;

export class AnalysisPipeline {
  readonly config: AnalysisConfig;
  readonly frame: AnalysisFrame;
  private readonly spectrum: SharedSpectrum;
  private readonly pitch: PitchTracker;
  private readonly onsets: OnsetDetector;
  private readonly dynamics: DynamicsMeter;
  private readonly window: Float32Array;
  /** The window after decimation: what the spectrum sees. */
  private readonly lowWindow: Float32Array;
  private readonly decimator: Decimator;
  private readonly invN: number;
  private writePos: number;
  private lowPos: number;
  private frameIndex = 0;
  private received = 0;
  private disposed = false;

  static fromPreset(kiss: KissFFT, name: PresetName, sampleRate: number, overrides?: ConfigOverrides): AnalysisPipeline {
    return new AnalysisPipeline(kiss, preset(name, sampleRate, overrides));
  }

  constructor(kiss: KissFFT, config: AnalysisConfig) {
    validateConfig(config);
    this.config = config;
    const d = analysisDecimation(config.sampleRate, config.windowSize, config.hopSize);
    const size = config.windowSize / d;
    const rate = config.sampleRate / d;
    this.decimator = new Decimator(d);
    this.spectrum = new SharedSpectrum(kiss, size, rate);
    this.pitch = new PitchTracker(config, rate, this.spectrum.decimation);
    this.onsets = new OnsetDetector(config, rate, size);
    this.dynamics = new DynamicsMeter(config.windowSize, config.hopSize);
    this.window = new Float32Array(config.windowSize);
    this.lowWindow = new Float32Array(size);
    this.invN = 1 / size;
    this.writePos = config.windowSize / 2;
    this.lowPos = size / 2;
    this.frame = {
      index: 0,
      sample: 0,
      time: 0,
      levelDb: DB_FLOOR,
      pitch: this.pitch.result,
      dynamics: this.dynamics.result,
      onsetCount: 0,
      onsetSample: 0,
      onsetTime: 0,
    };
  }

  get sampleRate(): number {
    return this.config.sampleRate;
  }

  get hopSize(): number {
    return this.config.hopSize;
  }

  /** Samples pushed since the start (or the last reset). */
  get samplesIn(): number {
    return this.received;
  }

  /** Frames produced so far. */
  get frames(): number {
    return this.frameIndex;
  }

  /**
   * Appends samples (any length, -1..1) and calls `onFrame` for every frame
   * they complete, with the same AnalysisFrame object each time (copy what
   * you keep). Returns the number of frames produced.
   */
  push(samples: Float32Array, onFrame?: FrameCallback): number {
    if (this.disposed) throw new Error('AnalysisPipeline used after dispose()');
    const n = this.config.windowSize;
    const w = this.window;
    let produced = 0;
    let i = 0;
    const len = samples.length;
    const low = this.lowWindow;
    const d = this.decimator.factor;
    const hop = this.config.hopSize;
    while (i < len) {
      const take = Math.min(n - this.writePos, len - i);
      w.set(take === len ? samples : samples.subarray(i, i + take), this.writePos);
      this.lowPos += this.decimator.process(samples, i, i + take, low, this.lowPos);
      this.writePos += take;
      i += take;
      if (this.writePos === n) {
        this.analyzeWindow();
        produced++;
        onFrame?.(this.frame);
        w.copyWithin(0, hop);
        this.writePos = n - hop;
        low.copyWithin(0, hop / d);
        this.lowPos = (n - hop) / d;
      }
    }
    this.received += len;
    return produced;
  }

  /**
   * End of stream: pads with silence until every received sample has had a
   * frame centred at or after it. The pipeline can go on afterwards only
   * after reset().
   */
  flush(onFrame?: FrameCallback): number {
    let produced = 0;
    const hop = this.config.hopSize;
    const zeros = new Float32Array(hop);
    const end = this.received;
    while (this.frameIndex * hop < end) {
      const before = this.received;
      produced += this.push(zeros.subarray(0, Math.min(hop, this.config.windowSize - this.writePos)), onFrame);
      this.received = before;
    }
    return produced;
  }

  reset(): void {
    this.window.fill(0);
    this.lowWindow.fill(0);
    this.decimator.reset();
    this.writePos = this.config.windowSize / 2;
    this.lowPos = this.lowWindow.length / 2;
    this.frameIndex = 0;
    this.received = 0;
    this.pitch.reset();
    this.onsets.reset();
    this.frame.onsetCount = 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.spectrum.dispose();
  }

  private analyzeWindow(): void {
    const cfg = this.config;
    const f = this.frame;
    const k = this.frameIndex++;
    this.spectrum.analyze(this.lowWindow);
    const e = this.spectrum.energy * this.invN;
    const levelDb = e > 1e-12 ? 10 * Math.log10(e) : DB_FLOOR;
    f.index = k;
    f.sample = k * cfg.hopSize;
    f.time = f.sample / cfg.sampleRate;
    f.levelDb = levelDb;
    this.dynamics.process(this.window);
    const onsetFrame = this.onsets.process(this.spectrum, levelDb);
    if (onsetFrame >= 0) {
      f.onsetCount = 1;
      f.onsetSample = Math.max(0, Math.round((onsetFrame + ONSET_OFFSET_HOPS) * cfg.hopSize));
      f.onsetTime = f.onsetSample / cfg.sampleRate;
      this.pitch.noteOnset(levelDb);
    } else f.onsetCount = 0;
    this.pitch.process(this.spectrum, levelDb);
  }
}
