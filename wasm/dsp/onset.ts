// Onsets: an online spectral-flux detector in the SuperFlux family (Böck &
// Widmer, "Maximum filter vibrato suppression for onset detection", DAFx 2013)
// with a noise floor per band.
//
// Per frame: the Hann power spectrum of SharedSpectrum is summed into bands
// a semitone wide (narrow bands merged so each has at least one bin). Each
// band keeps a noise floor, a running minimum of its smoothed energy that
// falls at once and rises slowly; only energy above `floorMargin` times that
// floor counts. This is the adaptive silence gate: in steady noise the excess
// is zero in almost every band, so noise adds nothing to the detection
// function and the threshold need not be raised to ride over it (a fixed
// gate or threshold loses most onsets at 10 dB SNR). The excess is log
// compressed, and the flux is the positive difference to the maximum of the
// neighbouring bands `lag` frames earlier (the maximum filter keeps vibrato
// from reading as onsets).
//
// Peak picking is online with one frame of look-ahead: frame c is an onset
// when its flux exceeds the next frame's and every frame of the last
// `preMaxS`, exceeds `medianScale` × the median of the last `medianS` plus
// `delta`, lies `minIntervalS` after the previous onset, and is louder than
// `silenceDb`.
import type { AnalysisConfig } from './config.ts';
import type { SharedSpectrum } from './spectrum.ts';

const LN10_10 = Math.LN10 / 10;
/** Lowest band edge, Hz. */
const BAND_LOW_HZ = 30;
const BAND_HIGH_HZ = 16_000;
/** One-pole smoothing of band energies for the floor tracker (per frame at ~86 fps). */
const FLOOR_SMOOTH = 0.35;
/**
 * For this long after a reset the floor may rise fast: it starts from the
 * first frame (half of it the silence before the stream) and must reach the
 * noise of a live input before that noise reads as onsets.
 */
const WARMUP_S = 0.5;
const WARMUP_RISE_DB_PER_S = 60;
/** Level falling by this much over the peak frame and the next marks an offset. */
const OFFSET_DROP_DB = 1;
/** The compression knee never lies below this multiple of a band's noise floor. */
const KNEE_FLOOR = 8;

export class OnsetDetector {
  /** Flux of the latest frame (the detection function), for inspection and tests. */
  odf = 0;
  readonly bandCount: number;
  private readonly bandLo: Int32Array;
  private readonly bandHi: Int32Array;
  private readonly margin: Float32Array;
  private readonly smooth: Float64Array;
  /** Noise floor per band (energy); -1 until the first frame. */
  private readonly floor: Float64Array;
  private readonly logHist: Float32Array;
  private histPos = 0;
  private readonly odfHist: Float32Array;
  private readonly levelHist: Float32Array;
  private readonly scratch: Float32Array;
  private readonly medianLen: number;
  private readonly preMax: number;
  private readonly lag: number;
  private readonly minIntervalFrames: number;
  private readonly compression: number;
  private readonly medianScale: number;
  private readonly delta: number;
  private readonly silenceDb: number;
  /** Factor the floor may grow by per frame. */
  private readonly rise: number;
  private readonly warmupRise: number;
  private readonly warmupFrames: number;
  private frames = 0;
  private lastOnset = -Infinity;

  /** `spectrumSize` is the window the spectrum was taken over, at `rate` (after decimation). */
  constructor(cfg: AnalysisConfig, rate = cfg.sampleRate, spectrumSize = cfg.windowSize) {
    const { sampleRate, hopSize } = cfg;
    const windowSize = spectrumSize;
    const o = cfg.onset;
    const binHz = rate / windowSize;
    const nyq = windowSize / 2;
    const lo: number[] = [];
    const hi: number[] = [];
    let prev = Math.max(1, Math.round(BAND_LOW_HZ / binHz));
    const top = Math.min(nyq, Math.round(Math.min(BAND_HIGH_HZ, rate * 0.47) / binHz));
    for (let f = BAND_LOW_HZ * 2 ** (1 / 12); prev < top; f *= 2 ** (1 / 12)) {
      const edge = Math.min(top, Math.round(f / binHz));
      if (edge <= prev) continue;
      lo.push(prev);
      hi.push(edge);
      prev = edge;
    }
    this.bandCount = lo.length;
    this.bandLo = Int32Array.from(lo);
    this.bandHi = Int32Array.from(hi);
    this.margin = new Float32Array(this.bandCount);
    // How far noise alone rises above the floor depends on how many bins a
    // band sums: a single Hann bin of white noise exceeds its running minimum
    // fifteenfold about 1% of the time, a 25-bin band only twofold. The
    // margin follows that 99th percentile (measured on white noise), scaled
    // by floorMargin / 2.
    for (let b = 0; b < this.bandCount; b++) this.margin[b] = (o.floorMargin / 2) * (1 + 16 / (hi[b] - lo[b]) ** 0.8);
    this.smooth = new Float64Array(this.bandCount);
    this.floor = new Float64Array(this.bandCount);
    this.lag = o.lag;
    this.logHist = new Float32Array((o.lag + 1) * this.bandCount);
    const fps = sampleRate / hopSize;
    this.medianLen = Math.max(3, Math.round(o.medianS * fps));
    this.preMax = Math.max(1, Math.round(o.preMaxS * fps));
    const histLen = Math.max(this.medianLen, this.preMax) + 2;
    this.odfHist = new Float32Array(histLen);
    this.levelHist = new Float32Array(histLen);
    this.scratch = new Float32Array(this.medianLen);
    this.minIntervalFrames = (o.minIntervalS * sampleRate) / hopSize;
    this.compression = o.compression;
    this.medianScale = o.medianScale;
    this.delta = o.delta;
    this.silenceDb = o.silenceDb;
    this.rise = Math.exp(o.floorRiseDbPerS * LN10_10 * (hopSize / sampleRate));
    this.warmupRise = Math.exp(Math.max(o.floorRiseDbPerS, WARMUP_RISE_DB_PER_S) * LN10_10 * (hopSize / sampleRate));
    this.warmupFrames = Math.round((WARMUP_S * sampleRate) / hopSize);
    this.reset();
  }

  reset(): void {
    this.frames = 0;
    this.lastOnset = -Infinity;
    this.histPos = 0;
    this.odf = 0;
    this.smooth.fill(0);
    this.floor.fill(-1);
    this.logHist.fill(0);
    this.odfHist.fill(0);
    this.levelHist.fill(-200);
  }

  /**
   * Feeds frame `this.frames` (counted from 0 since reset) and returns the
   * index of the frame found to be an onset, one frame back, or -1.
   */
  process(s: SharedSpectrum, levelDb: number): number {
    const P = s.power;
    const B = this.bandCount;
    const lo = this.bandLo;
    const hi = this.bandHi;
    const lagSlot = ((this.histPos + 1) % (this.lag + 1)) * B; // the frame `lag` back
    const curSlot = this.histPos * B;
    const hist = this.logHist;
    const invGain = 1 / this.compression;
    const rise = this.frames < this.warmupFrames ? this.warmupRise : this.rise;
    let flux = 0;
    for (let b = 0; b < B; b++) {
      let e = 0;
      for (let k = lo[b]; k < hi[b]; k++) e += P[k];
      // Noise floor: minimum of the smoothed energy, rising slowly.
      const sm = (this.smooth[b] += FLOOR_SMOOTH * (e - this.smooth[b]));
      let fl = this.floor[b] * rise;
      if (!(sm >= fl) || fl < 0) fl = sm;
      this.floor[b] = fl;
      const excess = e - this.margin[b] * fl;
      // The knee of the compression is the larger of 1/gain and the band's
      // floor: over loud noise an excess is measured against the noise,
      // so noise that pokes above the margin weighs the same at any level.
      const knee = KNEE_FLOOR * fl > invGain ? KNEE_FLOOR * fl : invGain;
      const v = excess > 0 ? Math.log10(1 + excess / knee) : 0;
      hist[curSlot + b] = v;
      // Maximum filter over neighbouring bands of the reference frame.
      let ref = hist[lagSlot + b];
      if (b > 0 && hist[lagSlot + b - 1] > ref) ref = hist[lagSlot + b - 1];
      if (b + 1 < B && hist[lagSlot + b + 1] > ref) ref = hist[lagSlot + b + 1];
      if (v > ref) flux += v - ref;
    }
    this.histPos = (this.histPos + 1) % (this.lag + 1);
    const frame = this.frames++;
    this.odf = flux;
    // Before `lag` frames exist, the reference is the empty start: no onsets from it.
    if (frame < this.lag) {
      this.pushOdf(0, levelDb);
      return -1;
    }
    this.pushOdf(flux, levelDb);
    return this.pick(frame - 1);
  }

  private pushOdf(v: number, levelDb: number): void {
    const n = this.odfHist.length;
    this.odfHist.copyWithin(0, 1);
    this.odfHist[n - 1] = v;
    this.levelHist.copyWithin(0, 1);
    this.levelHist[n - 1] = levelDb;
  }

  /** Peak picking for the frame one back (the newest is the look-ahead). */
  private pick(candidate: number): number {
    const h = this.odfHist;
    const n = h.length;
    const next = h[n - 1];
    const c = h[n - 2];
    if (!(c > next) || c <= 0) return -1;
    for (let k = 1; k <= this.preMax; k++) if (h[n - 2 - k] > c) return -1;
    const m = this.medianLen;
    const sc = this.scratch;
    for (let k = 0; k < m; k++) sc[k] = h[n - 1 - m + k] ?? 0;
    // Insertion sort: the window is a dozen values.
    for (let a = 1; a < m; a++) {
      const v = sc[a];
      let b = a - 1;
      while (b >= 0 && sc[b] > v) {
        sc[b + 1] = sc[b];
        b--;
      }
      sc[b + 1] = v;
    }
    const median = m % 2 ? sc[(m - 1) / 2] : 0.5 * (sc[m / 2 - 1] + sc[m / 2]);
    if (c < this.medianScale * median + this.delta) return -1;
    if (candidate - this.lastOnset < this.minIntervalFrames) return -1;
    const lh = this.levelHist;
    const level = Math.max(lh[n - 2], lh[n - 1]);
    if (level < this.silenceDb) return -1;
    // A sound that stops abruptly splashes energy across the spectrum (positive
    // flux) while the level falls: an offset, not an onset.
    if (lh[n - 1] < lh[n - 2] - OFFSET_DROP_DB && lh[n - 2] < lh[n - 3] - OFFSET_DROP_DB) return -1;
    this.lastOnset = candidate;
    return candidate;
  }
}
