// Landmark fingerprints after Avery Wang, "An Industrial-Strength Audio
// Search Algorithm" (ISMIR 2003): spectral peaks of a short-time spectrum,
// each anchor peak paired with the first few peaks in a target zone after it,
// hashed as (anchor frequency, frequency difference, time difference). A hash
// survives noise, codecs and band-limiting as long as its two peaks do, and
// the time of its anchor lets a matcher vote on the alignment of the query.
//
// Peaks here are local maxima of the log spectrum over a time-frequency
// neighbourhood that also stand a fixed number of dB above the frame's smoothed
// spectral envelope: a relative test, so gain changes do not matter and a
// flat noise floor (whose own bumps are a few dB high) does not make peaks.
// Streaming: one hop of samples in, the landmarks it completes out, with a
// latency of `peakFrames` frames; every buffer is allocated up front.
//
// Speed changes: a stream played s times fast has its peaks at s times the
// frequency and 1/s times the time of the recording's. Peaks are found once
// (with sub-bin frequency from a parabola through the log spectrum) and a
// `PeakPairer` per speed hypothesis maps them back to the recording's grid
// before pairing, so one spectrogram serves every hypothesis.
import type { KissFFT } from '../kissfft.ts';
import { RealFFT } from '../fft.ts';
import type { FingerprintConfig } from './config.ts';
export { HASH_BITS } from './config.ts';

const DB_PER_NEPER = 10 / Math.LN10;

/** Packs a landmark pair; the layout caps f1 < 512, |df| < 64, dt < 64. */
export function packHash(f1: number, df: number, dt: number): number {
  return (f1 << 13) | ((df + 64) << 6) | dt;
}

export function unpackHash(hash: number): { f1: number; df: number; dt: number } {
  return { f1: hash >>> 13, df: ((hash >>> 6) & 127) - 64, dt: hash & 63 };
}

export function validateConfig(cfg: FingerprintConfig): void {
  const bins = cfg.frameSize / 2;
  const lo = Math.round((cfg.minHz * cfg.frameSize) / cfg.sampleRate);
  const hi = Math.round((cfg.maxHz * cfg.frameSize) / cfg.sampleRate);
  if (cfg.hop > cfg.frameSize) throw new RangeError(`hop size ${cfg.hop} is larger than frame size ${cfg.frameSize}`);
  if (hi > bins || lo < 1 || hi <= lo) throw new RangeError(`band ${cfg.minHz}..${cfg.maxHz} Hz does not fit ${cfg.sampleRate} Hz`);
  if (hi - lo >= 512) throw new RangeError('the band spans 512 bins or more; the hash layout holds 9 bits of frequency');
  if (cfg.maxDt < 1 || cfg.maxDt > 63) throw new RangeError('maxDt must be 1..63 frames');
  if (cfg.maxDf < 1 || cfg.maxDf > 63) throw new RangeError('maxDf must be 1..63 bins');
}

/** The peaks of one frame: absolute fractional FFT bins, valid until the next `process`. */
export class PeakPicker {
  readonly cfg: FingerprintConfig;
  /** Peaks of frame `frame` found by the last `process` call: `count` entries of `bins`. */
  readonly bins: Float32Array;
  count = 0;
  /** The frame those peaks belong to (`peakFrames` behind the newest). */
  frame = -1;
  /** Frames processed so far. */
  frames = 0;
  /** Peaks found so far (for density statistics). */
  peaks = 0;
  readonly lo: number;
  readonly width: number;

  private readonly fft: RealFFT;
  private readonly window: Float32Array;
  private readonly samples: Float32Array;
  private readonly depth: number;
  /** Ring of the last `depth` frames: log power, height above the envelope, frequency-neighbourhood max. */
  private readonly logRing: Float32Array;
  private readonly promRing: Float32Array;
  private readonly fmaxRing: Float32Array;
  private readonly prefix: Float64Array;
  private readonly fwd: Float32Array;
  private readonly bwd: Float32Array;
  private readonly minDb: number;
  private readonly candBin: Int32Array;
  private readonly candScore: Float32Array;

  constructor(kiss: KissFFT, cfg: FingerprintConfig) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.fft = new RealFFT(kiss, cfg.frameSize);
    this.window = new Float32Array(cfg.frameSize);
    for (let i = 0; i < cfg.frameSize; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / cfg.frameSize);
    this.samples = new Float32Array(cfg.frameSize);
    this.lo = Math.round((cfg.minHz * cfg.frameSize) / cfg.sampleRate);
    const hi = Math.round((cfg.maxHz * cfg.frameSize) / cfg.sampleRate);
    this.width = hi - this.lo + 1;
    this.depth = 2 * cfg.peakFrames + 1;
    this.logRing = new Float32Array(this.depth * this.width).fill(-200);
    this.promRing = new Float32Array(this.depth * this.width);
    this.fmaxRing = new Float32Array(this.depth * this.width).fill(-200);
    this.prefix = new Float64Array(this.width + 1);
    this.fwd = new Float32Array(this.width);
    this.bwd = new Float32Array(this.width);
    // A full-scale sine through a Hann window has magnitude frameSize/4.
    this.minDb = cfg.minDbfs + 20 * Math.log10(cfg.frameSize / 4);
    this.candBin = new Int32Array(cfg.maxPeaksPerFrame + 1);
    this.candScore = new Float32Array(cfg.maxPeaksPerFrame + 1);
    this.bins = new Float32Array(cfg.maxPeaksPerFrame);
  }

  /** Feeds one hop of samples at `cfg.sampleRate`; returns the peaks completed (in `bins`, of `frame`). */
  process(hop: Float32Array): number {
    const cfg = this.cfg;
    if (hop.length !== cfg.hop) throw new RangeError(`expected ${cfg.hop} samples, got ${hop.length}`);
    this.count = 0;
    const n = cfg.frameSize;
    const h = cfg.hop;
    const frame = this.samples;
    const input = this.fft.input;
    const w = this.window;
    // Slide and window in one pass (a copyWithin, a set and a multiply loop were three).
    for (let i = 0; i < n - h; i++) {
      const x = frame[i + h];
      frame[i] = x;
      input[i] = x * w[i];
    }
    for (let i = 0, j = n - h; i < h; i++, j++) {
      const x = hop[i];
      frame[j] = x;
      input[j] = x * w[j];
    }
    const spec = this.fft.forward();

    const width = this.width;
    const slot = (this.frames % this.depth) * width;
    const log = this.logRing;
    const prefix = this.prefix;
    prefix[0] = 0;
    for (let k = 0, q = 2 * this.lo; k < width; k++, q += 2) {
      const re = spec[q];
      const im = spec[q + 1];
      const v = DB_PER_NEPER * Math.log(re * re + im * im + 1e-12);
      log[slot + k] = v;
      prefix[k + 1] = prefix[k] + v;
    }
    // Envelope: a box mean of the log spectrum; height above it is scale-free.
    // The box is cut short at the band's edges and full (2e + 1 bins) between them.
    const e = cfg.envelopeBins;
    const prom = this.promRing;
    const full = Math.min(e, width);
    const inner = Math.max(full, width - e - 1);
    for (let k = 0; k < full; k++) {
      const b = k + e + 1 > width ? width : k + e + 1;
      prom[slot + k] = log[slot + k] - prefix[b] / b;
    }
    for (let k = full; k < inner; k++) prom[slot + k] = log[slot + k] - (prefix[k + e + 1] - prefix[k - e]) / (2 * e + 1);
    for (let k = inner; k < width; k++) {
      const a = k - e < 0 ? 0 : k - e;
      const b = k + e + 1 > width ? width : k + e + 1;
      prom[slot + k] = log[slot + k] - (prefix[b] - prefix[a]) / (b - a);
    }
    // Running max over ±peakBins (van Herk / Gil-Werman): within blocks of
    // `size` bins, a prefix max and a suffix max; any window of `size` bins
    // spans at most two blocks.
    const size = 2 * cfg.peakBins + 1;
    const fwd = this.fwd;
    const bwd = this.bwd;
    for (let s = 0; s < width; s += size) {
      const end = s + size < width ? s + size : width;
      let m = log[slot + s];
      fwd[s] = m;
      for (let k = s + 1; k < end; k++) {
        const v = log[slot + k];
        if (v > m) m = v;
        fwd[k] = m;
      }
      m = log[slot + end - 1];
      bwd[end - 1] = m;
      for (let k = end - 2; k >= s; k--) {
        const v = log[slot + k];
        if (v > m) m = v;
        bwd[k] = m;
      }
    }
    const fmax = this.fmaxRing;
    const pb = cfg.peakBins;
    // [a, b] spans at most two blocks: the suffix max of a's block and the prefix max of b's.
    // Near the band edges the window is cut short and this over-reaches into the next
    // block, which only makes edge peaks harder to accept.
    for (let k = 0; k < width; k++) {
      const a = k - pb < 0 ? 0 : k - pb;
      const b = k + pb >= width ? width - 1 : k + pb;
      const m1 = bwd[a];
      const m2 = fwd[b];
      fmax[slot + k] = m1 > m2 ? m1 : m2;
    }
    this.frames++;
    if (this.frames >= this.depth) this.pickCentre(this.frames - 1 - cfg.peakFrames);
    return this.count;
  }

  /** Peaks of frame `c`, now the centre of the ring. */
  private pickCentre(c: number): void {
    const cfg = this.cfg;
    const width = this.width;
    const depth = this.depth;
    const centre = (c % depth) * width;
    const log = this.logRing;
    const prom = this.promRing;
    const fmax = this.fmaxRing;
    const max = cfg.maxPeaksPerFrame;
    const minProm = cfg.minProminenceDb;
    const minDb = this.minDb;
    let nc = 0;
    for (let k = 0; k < width; k++) {
      const v = log[centre + k];
      const score = prom[centre + k];
      if (v < fmax[centre + k] || score < minProm || v < minDb) continue;
      // Keep the strongest `maxPeaksPerFrame` by height above the envelope
      // (tested first: it is cheaper than the neighbourhood in time, and either rejects).
      if (nc === max && score <= this.candScore[max - 1]) continue;
      let isMax = true;
      for (let d = 0; d < depth; d++) {
        if (fmax[d * width + k] > v) {
          isMax = false;
          break;
        }
      }
      if (!isMax) continue;
      let pos = nc < max ? nc++ : max - 1;
      while (pos > 0 && this.candScore[pos - 1] < score) {
        this.candScore[pos] = this.candScore[pos - 1];
        this.candBin[pos] = this.candBin[pos - 1];
        pos--;
      }
      this.candScore[pos] = score;
      this.candBin[pos] = k;
    }
    // Ascending frequency, with the sub-bin position of each peak.
    for (let i = 1; i < nc; i++) {
      const b = this.candBin[i];
      let j = i;
      while (j > 0 && this.candBin[j - 1] > b) {
        this.candBin[j] = this.candBin[j - 1];
        j--;
      }
      this.candBin[j] = b;
    }
    for (let i = 0; i < nc; i++) {
      const k = this.candBin[i];
      let delta = 0;
      if (k > 0 && k < width - 1) {
        const l = log[centre + k - 1];
        const m = log[centre + k];
        const r = log[centre + k + 1];
        const den = l - 2 * m + r;
        if (den < 0) delta = Math.max(-0.5, Math.min(0.5, (0.5 * (l - r)) / den));
      }
      this.bins[i] = this.lo + k + delta;
    }
    this.count = nc;
    this.frame = c;
    this.peaks += nc;
  }

  dispose(): void {
    this.fft.dispose();
  }
}

/**
 * Pairs peaks into hashes (Wang's combinatorial hashing) on the recording's
 * grid for one speed hypothesis: a peak at fractional bin b of query frame t
 * is placed at bin round(b / speed), frame round(t · speed).
 */
export class PeakPairer {
  readonly cfg: FingerprintConfig;
  readonly speed: number;
  /** Landmarks completed by the last `pair` call: `count` entries are valid. */
  readonly hashes: Uint32Array;
  readonly times: Int32Array;
  count = 0;
  private readonly lo: number;
  private readonly width: number;
  private readonly anchorFrame: Int32Array;
  private readonly anchorBin: Int32Array;
  private readonly anchorLeft: Int32Array;
  private readonly mapped: Int32Array;
  /** Ring slots of the anchors that can still pair with the current frame. */
  private readonly live: Int32Array;
  private anchorHead = 0;
  private anchorCount = 0;

  constructor(cfg: FingerprintConfig, speed = 1) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.speed = speed;
    this.lo = Math.round((cfg.minHz * cfg.frameSize) / cfg.sampleRate);
    this.width = Math.round((cfg.maxHz * cfg.frameSize) / cfg.sampleRate) - this.lo + 1;
    const anchors = cfg.maxPeaksPerFrame * (cfg.maxDt + 1);
    this.anchorFrame = new Int32Array(anchors);
    this.anchorBin = new Int32Array(anchors);
    this.anchorLeft = new Int32Array(anchors);
    this.mapped = new Int32Array(cfg.maxPeaksPerFrame);
    this.live = new Int32Array(anchors);
    const maxOut = cfg.maxPeaksPerFrame * anchors;
    this.hashes = new Uint32Array(maxOut);
    this.times = new Int32Array(maxOut);
  }

  /**
   * Forgets every anchor. A hypothesis that sat out some frames must not pair
   * across the gap: its anchors' fan-out would go to peaks the gap hid.
   */
  reset(): void {
    this.anchorHead = 0;
    this.anchorCount = 0;
    this.count = 0;
  }

  /** Pairs the `count` peaks (absolute fractional bins, ascending) of query frame `frame`. */
  pair(frame: number, bins: Float32Array, count: number): number {
    const cfg = this.cfg;
    this.count = 0;
    const c = Math.round(frame * this.speed);
    let nc = 0;
    for (let i = 0; i < count; i++) {
      const k = Math.round(bins[i] / this.speed) - this.lo;
      if (k >= 0 && k < this.width) this.mapped[nc++] = k;
    }
    const cap = this.anchorFrame.length;
    // Forget anchors that fell out of the target zone.
    while (this.anchorCount > 0 && c - this.anchorFrame[this.anchorHead] > cfg.maxDt) {
      this.anchorHead = (this.anchorHead + 1) % cap;
      this.anchorCount--;
    }
    // Most anchors in the zone have spent their fan-out within a few frames:
    // the ones that can still pair are listed once (in age order, as the
    // peaks meet them), not skipped again for every peak.
    const live = this.live;
    let nl = 0;
    if (nc > 0) {
      for (let a = 0, s = this.anchorHead; a < this.anchorCount; a++, s = s + 1 === cap ? 0 : s + 1) {
        if (this.anchorLeft[s] > 0 && c - this.anchorFrame[s] >= 1) live[nl++] = s;
      }
    }
    for (let i = 0; i < nc; i++) {
      const bin = this.mapped[i];
      for (let j = 0; j < nl; j++) {
        const s = live[j];
        if (this.anchorLeft[s] === 0) continue;
        const df = bin - this.anchorBin[s];
        if (df > cfg.maxDf || df < -cfg.maxDf) continue;
        this.anchorLeft[s]--;
        this.hashes[this.count] = packHash(this.anchorBin[s], df, c - this.anchorFrame[s]);
        this.times[this.count] = this.anchorFrame[s];
        this.count++;
      }
    }
    for (let i = 0; i < nc; i++) {
      if (this.anchorCount === cap) {
        this.anchorHead = (this.anchorHead + 1) % cap;
        this.anchorCount--;
      }
      const s = (this.anchorHead + this.anchorCount) % cap;
      this.anchorFrame[s] = c;
      this.anchorBin[s] = this.mapped[i];
      this.anchorLeft[s] = cfg.fanOut;
      this.anchorCount++;
    }
    return this.count;
  }
}
