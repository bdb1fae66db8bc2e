// Fingerprinting of audio as it arrives: any input rate, any chunk size.
// The input is resampled to the analysis rate, its peaks picked once, and the
// peaks paired once per speed hypothesis on the recording's grid (see
// PeakPairer), so a sped-up or slowed-down stream yields the hashes the
// catalog stored for the recorded speed.
import type { KissFFT } from '../kissfft.ts';
import type { FingerprintConfig } from './config.ts';
import { PeakPairer, PeakPicker } from './landmarks.ts';
import { Resampler } from './resampler.ts';

/** Landmarks found by one `push`: `count` valid entries, overwritten by the next push. */
export interface LandmarkBatch {
  count: number;
  hashes: Uint32Array;
  /** Anchor time in frames of reference (recorded-speed) time since the stream began. */
  times: Int32Array;
  /** Index into the speed list of the hypothesis that produced each landmark. */
  speeds: Uint8Array;
}

export interface StreamFingerprinterOptions {
  /** Speed factors to search; default [1]. */
  speeds?: readonly number[];
  /** Largest chunk (input samples) one push accepts. */
  maxChunk?: number;
}

export class StreamFingerprinter {
  readonly cfg: FingerprintConfig;
  readonly inputRate: number;
  readonly speeds: readonly number[];
  readonly maxChunk: number;
  /** Input samples consumed so far. */
  samplesIn = 0;
  readonly batch: LandmarkBatch;
  private readonly decimator: Resampler;
  private readonly decimated: Float32Array;
  private readonly picker: PeakPicker;
  private readonly pairers: PeakPairer[];
  private readonly hop: Float32Array;
  private hopFill = 0;
  /** Which speed hypotheses are paired (see `focus`). */
  private readonly active: Uint8Array;

  constructor(kiss: KissFFT, cfg: FingerprintConfig, inputRate: number, opts: StreamFingerprinterOptions = {}) {
    this.cfg = cfg;
    this.inputRate = inputRate;
    this.speeds = opts.speeds ?? [1];
    if (this.speeds.length === 0 || this.speeds.length > 255) throw new RangeError('between 1 and 255 speed hypotheses');
    for (const s of this.speeds) if (!(s > 0.8 && s < 1.25)) throw new RangeError(`speed ${s} is outside 0.8..1.25`);
    this.maxChunk = opts.maxChunk ?? 16384;
    // Only the band below maxHz is analysed: aliases may land anywhere above it.
    const band = { passHz: cfg.maxHz * 1.05, stopHz: cfg.sampleRate - cfg.maxHz };
    this.decimator = new Resampler(inputRate, cfg.sampleRate, { maxChunk: this.maxChunk, band });
    this.decimated = new Float32Array(this.decimator.maxOutput(this.maxChunk));
    this.picker = new PeakPicker(kiss, cfg);
    this.pairers = this.speeds.map((s) => new PeakPairer(cfg, s));
    this.active = new Uint8Array(this.pairers.length).fill(1);
    this.hop = new Float32Array(cfg.hop);
    // Every landmark spends one unit of an anchor's fan-out, and the anchors a
    // push can spend are those alive when it starts plus the peaks it finds.
    const hopsPerPush = Math.ceil(this.decimated.length / cfg.hop) + 1;
    const anchors = cfg.maxPeaksPerFrame * (cfg.maxDt + 1) + hopsPerPush * cfg.maxPeaksPerFrame;
    const cap = this.pairers.length * anchors * cfg.fanOut;
    this.batch = { count: 0, hashes: new Uint32Array(cap), times: new Int32Array(cap), speeds: new Uint8Array(cap) };
  }

  /** Seconds of input consumed. */
  get audioS(): number {
    return this.samplesIn / this.inputRate;
  }

  /** Consumes a chunk of input samples; the landmarks it completed are in `batch`. */
  push(samples: Float32Array): LandmarkBatch {
    this.batch.count = 0;
    for (let off = 0; off < samples.length; off += this.maxChunk) {
      const chunk = samples.subarray(off, Math.min(samples.length, off + this.maxChunk));
      this.samplesIn += chunk.length;
      const n = this.decimator.process(chunk, this.decimated);
      const hop = this.hop;
      let i = 0;
      while (i < n) {
        const take = Math.min(hop.length - this.hopFill, n - i);
        hop.set(this.decimated.subarray(i, i + take), this.hopFill);
        this.hopFill += take;
        i += take;
        if (this.hopFill === hop.length) {
          this.hopFill = 0;
          if (this.picker.process(hop) > 0) this.pairAll();
        }
      }
    }
    return this.batch;
  }

  /**
   * Pairs only speed hypothesis `index` from now on, or every hypothesis again
   * (null). Peaks are picked either way; pairing, lookups and votes scale with
   * the hypotheses paired, so a stream whose speed is known pays for one.
   */
  focus(index: number | null): void {
    for (let l = 0; l < this.pairers.length; l++) {
      const on = index === null || l === index ? 1 : 0;
      if (on && !this.active[l]) this.pairers[l].reset();
      this.active[l] = on;
    }
  }

  /** Whether speed hypothesis `index` is paired now. */
  pairs(index: number): boolean {
    return this.active[index] === 1;
  }

  /** Speed hypotheses currently paired. */
  get activeSpeeds(): number {
    let n = 0;
    for (let l = 0; l < this.active.length; l++) n += this.active[l];
    return n;
  }

  private pairAll(): void {
    const b = this.batch;
    const p = this.picker;
    for (let l = 0; l < this.pairers.length; l++) {
      if (!this.active[l]) continue;
      const pairer = this.pairers[l];
      const n = pairer.pair(p.frame, p.bins, p.count);
      for (let i = 0; i < n && b.count < b.hashes.length; i++) {
        b.hashes[b.count] = pairer.hashes[i];
        b.times[b.count] = pairer.times[i];
        b.speeds[b.count] = l;
        b.count++;
      }
    }
  }

  /** Peaks found per second of audio, for tuning and reports. */
  peakRate(): number {
    return this.audioS > 0 ? this.picker.peaks / this.audioS : 0;
  }

  dispose(): void {
    this.picker.dispose();
  }
}

export interface TrackFingerprint {
  /** Hashes and anchor frames, in the order found (times ascending). */
  hashes: Uint32Array;
  times: Int32Array;
  durationS: number;
}

/** Fingerprints a whole recording for the catalog (recorded speed only). */
export function fingerprintSignal(kiss: KissFFT, cfg: FingerprintConfig, samples: Float32Array, sampleRate: number): TrackFingerprint {
  const fp = new StreamFingerprinter(kiss, cfg, sampleRate);
  let hashes = new Uint32Array(4096);
  let times = new Int32Array(4096);
  let n = 0;
  try {
    const step = fp.maxChunk;
    for (let off = 0; off < samples.length; off += step) {
      const b = fp.push(samples.subarray(off, Math.min(samples.length, off + step)));
      if (n + b.count > hashes.length) {
        const size = Math.max(hashes.length * 2, n + b.count);
        const h = new Uint32Array(size);
        h.set(hashes.subarray(0, n));
        const t = new Int32Array(size);
        t.set(times.subarray(0, n));
        hashes = h;
        times = t;
      }
      hashes.set(b.hashes.subarray(0, b.count), n);
      times.set(b.times.subarray(0, b.count), n);
      n += b.count;
    }
  } finally {
    fp.dispose();
  }
  return { hashes: hashes.slice(0, n), times: times.slice(0, n), durationS: samples.length / sampleRate };
}
