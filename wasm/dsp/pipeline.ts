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
import { PitchOnsets } from './pitch-onsets.ts';

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
 * Where an onset is placed when the waveform does not show it more
 * precisely, in hops after the centre of the frame whose flux peaked: the
 * flux of a log-compressed spectrum peaks about one hop after a sound starts.
 */
const ONSET_OFFSET_HOPS = -0.75;
/** Hops of full-rate history kept before the analysis window, for placing onsets. */
const HISTORY_HOPS = 2;
/** Two onsets (from flux and from pitch) closer than this are one. */
const SAME_ONSET_S = 0.08;
/**
 * A pitch onset is confirmed some frames after its note began (a slow
 * attack takes a while to show its pitch): it is placed at the strongest
 * flux of up to this many frames before the new pitch appeared, where the
 * note's energy arrived even if too softly to pass the flux threshold.
 */
const PITCH_ONSET_LOOKBACK = 12;
/** …and only if that flux reaches this (the flux threshold's delta is 1). */
const PITCH_ONSET_MIN_FLUX = 0.2;
const ODF_RING = 32;

export class AnalysisPipeline {
  readonly config: AnalysisConfig;
  readonly frame: AnalysisFrame;
  private readonly spectrum: SharedSpectrum;
  private readonly pitch: PitchTracker;
  private readonly onsets: OnsetDetector;
  private readonly dynamics: DynamicsMeter;
  /** Full-rate samples: HISTORY_HOPS hops of history, then the analysis window. */
  private readonly buffer: Float32Array;
  private readonly window: Float32Array;
  private readonly history: number;
  private readonly refiner: OnsetRefiner;
  private readonly pitchOnsets = new PitchOnsets();
  private lastOnsetSample = -Infinity;
  /** A pitch onset waiting for a frame of its own (this frame already carries one). */
  private queuedOnset = -1;
  private readonly odfRing = new Float32Array(ODF_RING);
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
    this.history = HISTORY_HOPS * config.hopSize;
    this.buffer = new Float32Array(this.history + config.windowSize);
    this.window = this.buffer.subarray(this.history);
    this.refiner = new OnsetRefiner(config.sampleRate, config.hopSize);
    this.lowWindow = new Float32Array(size);
    this.invN = 1 / size;
    this.writePos = this.history + config.windowSize / 2;
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
    const n = this.buffer.length;
    const w = this.buffer;
    let produced = 0;
    let i = 0;
    const len = samples.length;
    const low = this.lowWindow;
    const d = this.decimator.factor;
    const hop = this.config.hopSize;
    while (i < len) {
      const take = Math.min(n - this.writePos, len - i);
      // A loop, not set(subarray()): push() allocates nothing per hop.
      const at = this.writePos - i;
      for (let j = i; j < i + take; j++) w[at + j] = samples[j];
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
        this.lowPos = (this.config.windowSize - hop) / d;
      }
    }
    this.received += len;
    return produced;
  }

  /**
   * aubio-style: exactly one hop of samples in, the frame it completes out
   * (null while the first half window is still filling).
   */
  process(hop: Float32Array): AnalysisFrame | null {
    if (hop.length !== this.config.hopSize) throw new RangeError(`process() takes ${this.config.hopSize} samples, got ${hop.length}`);
    return this.push(hop) > 0 ? this.frame : null;
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
      produced += this.push(zeros.subarray(0, Math.min(hop, this.buffer.length - this.writePos)), onFrame);
      this.received = before;
    }
    return produced;
  }

  reset(): void {
    this.buffer.fill(0);
    this.lowWindow.fill(0);
    this.decimator.reset();
    this.writePos = this.history + this.config.windowSize / 2;
    this.lowPos = this.lowWindow.length / 2;
    this.frameIndex = 0;
    this.received = 0;
    this.pitch.reset();
    this.onsets.reset();
    this.pitchOnsets.reset();
    this.lastOnsetSample = -Infinity;
    this.queuedOnset = -1;
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
    // Frames whose window reaches into the silence before the stream have no
    // past to compare with: a stream that starts in noise would always begin
    // with an "onset". The detector still learns from them.
    const found = this.onsets.process(this.spectrum, levelDb);
    this.odfRing[k % ODF_RING] = this.onsets.odf;
    const onsetFrame = found >= 0 && found * cfg.hopSize >= cfg.windowSize / 2 ? found : -1;
    f.onsetCount = 0;
    if (onsetFrame >= 0) {
      // The buffer starts at stream sample k·hop - N/2 - history.
      const bufferStart = k * cfg.hopSize - cfg.windowSize / 2 - this.history;
      const guess = (onsetFrame + ONSET_OFFSET_HOPS) * cfg.hopSize;
      const refined = this.refiner.locate(this.buffer, bufferStart, onsetFrame * cfg.hopSize);
      this.emitOnset(Math.max(0, Math.round(refined >= 0 ? refined : guess)));
      this.pitch.noteOnset(levelDb);
    }
    this.pitch.process(this.spectrum, levelDb);
    // Legato notes: a new settled pitch is an onset unless flux found it.
    const p = this.pitchOnsets.process(k, this.pitch.result.voiced, this.pitch.result.hz, this.pitch.result.clarity, levelDb);
    if (p >= 0) {
      // The flux of frame j is the change from j-1 to j: its peak marks the arrival.
      let best = -1;
      let bestJ = -1;
      // Not back past the last onset: its flux belongs to the note before.
      const sinceLast = Number.isFinite(this.lastOnsetSample) ? Math.floor(this.lastOnsetSample / cfg.hopSize) + 2 : 0;
      const from = Math.max(0, k - ODF_RING + 1, Math.floor(p) - PITCH_ONSET_LOOKBACK, sinceLast);
      for (let j = Math.ceil(p) + 1; j >= from; j--) {
        const v = this.odfRing[j % ODF_RING];
        if (v > best) [best, bestJ] = [v, j];
      }
      const pos = bestJ >= 0 && best > 0 ? bestJ + ONSET_OFFSET_HOPS : p;
      const at = Math.max(0, Math.round(pos * cfg.hopSize));
      // With no flux at all before it, a pitch change is a tail changing
      // under reverb, not a note that began.
      if (best < PITCH_ONSET_MIN_FLUX) {
        // not an onset
      } else if (f.onsetCount === 0) this.emitOnset(at);
      else this.queuedOnset = at;
    } else if (this.queuedOnset >= 0 && f.onsetCount === 0) {
      this.emitOnset(this.queuedOnset);
      this.queuedOnset = -1;
    }
  }

  private emitOnset(sample: number): void {
    const rate = this.config.sampleRate;
    if (Math.abs(sample - this.lastOnsetSample) < SAME_ONSET_S * rate) return;
    this.lastOnsetSample = sample;
    const f = this.frame;
    f.onsetCount = 1;
    f.onsetSample = sample;
    f.onsetTime = sample / rate;
  }
}

/**
 * Places an onset on the waveform: the start of the short block where the
 * energy of the next few blocks most exceeds that of the few before, within
 * two hops before to one hop after the frame whose flux peaked. Spectral
 * frames are a hop apart; this puts sharp onsets within a couple of ms.
 * Returns -1 when no block rises clearly (slow attacks), and the caller keeps
 * the frame-based estimate.
 */
class OnsetRefiner {
  private readonly block: number;
  private readonly energies: Float64Array;
  private readonly before: number;
  private readonly after: number;
  private static readonly SPAN = 3;
  /** The energy must rise at least this much (ratio) for the waveform to be trusted. */
  private static readonly MIN_RISE = 2.5;

  constructor(sampleRate: number, hopSize: number) {
    this.block = Math.max(8, Math.round(sampleRate * 0.0015));
    this.before = 2 * hopSize;
    this.after = hopSize;
    this.energies = new Float64Array(Math.ceil((this.before + this.after) / this.block) + 2 * OnsetRefiner.SPAN + 2);
  }

  locate(buf: Float32Array, bufferStart: number, frameSample: number): number {
    const b = this.block;
    const span = OnsetRefiner.SPAN;
    let from = frameSample - this.before - span * b - bufferStart;
    if (from < 0) from = 0;
    let to = frameSample + this.after + span * b - bufferStart;
    if (to > buf.length) to = buf.length;
    const count = Math.min(this.energies.length, Math.floor((to - from) / b));
    if (count < 2 * span + 1) return -1;
    const e = this.energies;
    for (let j = 0; j < count; j++) {
      let sum = 0;
      const start = from + j * b;
      for (let i = start; i < start + b; i++) sum += buf[i] * buf[i];
      e[j] = sum;
    }
    const floor = 1e-10 * b;
    let best = 0;
    let bestJ = -1;
    for (let j = span; j + span <= count; j++) {
      let pre = floor;
      let post = floor;
      for (let q = 1; q <= span; q++) pre += e[j - q];
      for (let q = 0; q < span; q++) post += e[j + q];
      const rise = post / pre;
      if (rise > best) {
        best = rise;
        bestJ = j;
      }
    }
    if (bestJ < 0 || best < OnsetRefiner.MIN_RISE) return -1;
    return bufferStart + from + bestJ * b;
  }
}
