// The one spectrum pass per hop that pitch and onsets share (dynamics read
// the same window in the time domain).
//
// The window (N samples, mean removed; the pipeline has already halved the
// rate of 32–96 kHz input, see decimator.ts) is zero-padded to F = 2N and
// transformed once. From that single spectrum come
//  - the power spectrum behind the *linear* autocorrelation (no wrap-around:
//    the padding leaves room for every lag), inverse-transformed at a
//    decimated size A = F/d that keeps only the bins below ~5.5 kHz, which
//    hold the harmonics pitch needs (and less of the noise) at half the
//    inverse's cost;
//  - the Hann-windowed N-point spectrum for onsets, for free: on the padded
//    grid the Hann window of the first N samples is 0.5 - 0.5 cos(2π·2n/F), so
//    X_hann[m] = 0.5 X[2m] - 0.25 (X[2m-2] + X[2m+2]) exactly.
// Every buffer is allocated here; analyze() allocates nothing.
//
// The power spectrum is real and even, so its inverse (the autocorrelation)
// is a type-I DCT: it is computed with a real FFT of half the inverse's size
// (Numerical Recipes' cosft1), which halves the cost of the second transform.
import type { KissFFT } from '../kissfft.ts';
import { RealFFT } from '../fft.ts';

/** Bandwidth kept for the autocorrelation: enough harmonics for any f0 up to ~2 kHz. */
const ACF_MIN_BANDWIDTH_HZ = 5_000;
/**
 * The autocorrelation keeps bins up to half its own Nyquist frequency, with
 * a raised-cosine taper over the top TAPER of them: sampled at four times
 * its highest frequency, a narrow NSDF peak keeps its height between lag
 * samples (at two times, a peak between samples can lose a third of it and
 * the next period's peak, sampled on the dot, wins: an octave error).
 */
const ACF_OVERSAMPLE = 2;
const TAPER = 0.25;

export class SharedSpectrum {
  readonly windowSize: number;
  readonly fftSize: number;
  /** Lag step of `acf`, in samples. */
  readonly decimation: number;
  /** Hann-windowed power spectrum, bins 0..N/2, scaled so a full-scale sine's peak bin is 1. */
  readonly power: Float32Array;
  /**
   * Band-limited autocorrelation at lags decimation·i, i = 0..N/decimation,
   * unnormalised: multiply by `acfScale` for r(τ)/r(0). Rewritten by every
   * analyze().
   */
  acf: Float32Array;
  acfScale = 0;
  /** How many entries of `acf` are lags of the window (N/decimation + 1). */
  readonly acfLength: number;
  /** Prefix sums of x² (mean removed): cumEnergy[j] = Σ_{i<j} x_i². */
  readonly cumEnergy: Float64Array;
  /** Σ x² of the window, mean removed. */
  energy = 0;
  mean = 0;

  private readonly fft: RealFFT;
  /** The half-size real FFT behind the autocorrelation's cosine transform. */
  private readonly cosFft: RealFFT;
  /** sin(πk/M) and cos(πk/M), k < M/2, for the cosine transform of M + 1 points. */
  private readonly cosSin: Float64Array;
  private readonly cosCos: Float64Array;
  /**
   * The band-weighted power spectrum up to the cut: the cosine transform's
   * input, and what acfAt() sums. Zero above the cut, written once.
   */
  private readonly lowPower: Float64Array;
  private readonly bandWeight: Float64Array;
  /** Bins above this carry no weight (and stay zero in the inverse's input). */
  private readonly cutBin: number;
  /** Bins up to this have weight 1: the taper starts above it. */
  private readonly flatBin: number;
  private readonly powerScale: number;
  private acfZero = 0;
  private disposed = false;

  /** The rate of the samples analysed (the pipeline's, after its decimation). */
  readonly sampleRate: number;

  constructor(kiss: KissFFT, windowSize: number, sampleRate: number) {
    this.sampleRate = sampleRate;
    if (!Number.isInteger(windowSize) || windowSize < 16 || (windowSize & (windowSize - 1)) !== 0) {
      throw new RangeError(`window size must be a power of two >= 16, got ${windowSize}`);
    }
    this.windowSize = windowSize;
    this.fftSize = 2 * windowSize;
    let d = 1;
    while (sampleRate / (2 * d) / 2 / ACF_OVERSAMPLE >= ACF_MIN_BANDWIDTH_HZ && d < 8 && windowSize / (2 * d) >= 64) d *= 2;
    this.decimation = d;
    // Its input starts zeroed (RealFFTPlan): the padding above the window is never written.
    this.fft = new RealFFT(kiss, this.fftSize);
    // The inverse would be of size F/d; its cosine transform takes M = F/(2d) + 1 points.
    const m = this.fftSize / (2 * d);
    try {
      this.cosFft = new RealFFT(kiss, m);
    } catch (e) {
      this.fft.dispose();
      throw e;
    }
    this.cosSin = new Float64Array(m / 2);
    this.cosCos = new Float64Array(m / 2);
    for (let k = 0; k < m / 2; k++) {
      this.cosSin[k] = Math.sin((Math.PI * k) / m);
      this.cosCos[k] = Math.cos((Math.PI * k) / m);
    }
    this.power = new Float32Array(windowSize / 2 + 1);
    this.acfLength = windowSize / d + 1;
    this.acf = new Float32Array(this.acfLength);
    this.cumEnergy = new Float64Array(windowSize + 1);
    // F/d/2 + 1 = m + 1 bins: exactly the cosine transform's input.
    this.lowPower = new Float64Array(m + 1);
    const kMax = this.lowPower.length - 1;
    // At low rates half the Nyquist would cut into the pitch range itself:
    // keep at least 2.5 kHz there (below 0.45 of the rate).
    const acfRate = sampleRate / d;
    const cutHz = Math.max(acfRate / (2 * ACF_OVERSAMPLE), Math.min(0.45 * acfRate, 2_500));
    const cut = Math.min(kMax, Math.floor(cutHz / (sampleRate / this.fftSize)));
    this.bandWeight = new Float64Array(kMax + 1);
    this.cutBin = cut;
    const t0 = Math.floor(cut * (1 - TAPER));
    this.flatBin = t0;
    for (let k = 0; k <= cut; k++) this.bandWeight[k] = k <= t0 ? 1 : 0.5 + 0.5 * Math.cos((Math.PI * (k - t0)) / (cut - t0));
    this.powerScale = 1 / ((windowSize / 4) * (windowSize / 4));
  }

  analyze(window: Float32Array): void {
    if (this.disposed) throw new Error('SharedSpectrum used after dispose()');
    const n = this.windowSize;
    if (window.length !== n) throw new RangeError(`expected a window of ${n} samples, got ${window.length}`);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += window[i];
    const mean = sum / n;
    this.mean = mean;
    const input = this.fft.input;
    const cum = this.cumEnergy;
    let e = 0;
    cum[0] = 0;
    for (let i = 0; i < n; i++) {
      const v = window[i] - mean;
      input[i] = v;
      e += v * v;
      cum[i + 1] = e;
    }
    this.energy = e;
    if (e === 0) {
      // Digital silence (or a constant): every transform below is exactly
      // zero, so skip them. Muted inputs and the gaps between takes are common.
      this.silent();
      return;
    }
    const X = this.fft.forward();

    // Autocorrelation: |X|² below the kept bandwidth, inverse at the decimated size.
    const low = this.lowPower;
    const bw = this.bandWeight;
    const cutBin = this.cutBin;
    // Three quarters of the kept bins have weight 1: no multiplication there
    // (x·1 is x, so the values are the same).
    const flat = this.flatBin;
    for (let k = 0; k <= flat; k++) {
      const re = X[2 * k];
      const im = X[2 * k + 1];
      low[k] = re * re + im * im;
    }
    for (let k = flat + 1; k <= cutBin; k++) {
      const re = X[2 * k];
      const im = X[2 * k + 1];
      low[k] = (re * re + im * im) * bw[k];
    }
    this.cosineTransform();
    const r0 = this.acf[0];
    this.acfZero = r0;
    this.acfScale = r0 > 0 ? 1 / r0 : 0;

    // Hann spectrum at the even bins of the padded grid:
    // X_h[m] = 0.5 X[2m] - 0.25 (X[2m-2] + X[2m+2]).
    const P = this.power;
    const half = n / 2;
    const scale = this.powerScale;
    // Edges: X[-2] = conj(X[2]) and X[F/2 + 2] = conj(X[F/2 - 2]) for a real input.
    {
      const re = 0.5 * X[0] - 0.5 * X[4];
      P[0] = re * re * scale;
      const l = 4 * half;
      const reL = 0.5 * X[l] - 0.5 * X[l - 4];
      P[half] = reL * reL * scale;
    }
    // Each even bin is read once and carried to the next two outputs.
    let prevRe = X[0];
    let prevIm = X[1];
    let curRe = X[4];
    let curIm = X[5];
    for (let m = 1; m < half; m++) {
      const k4 = 4 * m;
      const nextRe = X[k4 + 4];
      const nextIm = X[k4 + 5];
      const re = 0.5 * curRe - 0.25 * (prevRe + nextRe);
      const im = 0.5 * curIm - 0.25 * (prevIm + nextIm);
      P[m] = (re * re + im * im) * scale;
      prevRe = curRe;
      prevIm = curIm;
      curRe = nextRe;
      curIm = nextIm;
    }
  }

  private silent(): void {
    // Above the cut it is zero already.
    this.lowPower.fill(0, 0, this.cutBin + 1);
    this.acf.fill(0);
    this.power.fill(0);
    this.acfZero = 0;
    this.acfScale = 0;
  }

  /**
   * acf[n] = S_0 + (-1)^n S_M + 2 Σ_{0<k<M} S_k cos(πkn/M), n = 0..M, for the
   * weighted power spectrum S (zero above the cut): exactly what the real
   * inverse FFT of size 2M gave, from one real FFT of size M (cosft1 with
   * kiss_fftr's e^{-i} sign; the odd outputs are a running sum).
   */
  private cosineTransform(): void {
    const y = this.lowPower;
    const m = y.length - 1;
    const half = m / 2;
    const z = this.cosFft.input;
    const sn = this.cosSin;
    const cs = this.cosCos;
    let sum = 0.5 * (y[0] - y[m]);
    z[0] = 0.5 * (y[0] + y[m]);
    z[half] = y[half];
    // Below `upper` the mirrored bin m - k lies above the cut, where y is
    // zero: the same sums without it (a + 0 and a - 0 are a, bit for bit).
    const upper = Math.min(half, m - this.cutBin);
    for (let k = 1; k < upper; k++) {
      const a = y[k];
      const y1 = 0.5 * a;
      const t = sn[k] * a;
      z[k] = y1 - t;
      z[m - k] = y1 + t;
      sum += cs[k] * a;
    }
    for (let k = upper; k < half; k++) {
      const a = y[k];
      const b = y[m - k];
      const y1 = 0.5 * (a + b);
      const y2 = a - b;
      z[k] = y1 - sn[k] * y2;
      z[m - k] = y1 + sn[k] * y2;
      sum += cs[k] * y2;
    }
    const X = this.cosFft.forward();
    const out = this.acf;
    // Scaled by two: the inverse FFT's sum counts each bin below M twice.
    out[0] = 2 * X[0];
    out[m] = 2 * X[m];
    out[1] = 2 * sum;
    let odd = sum;
    for (let j = 1; j < half; j++) {
      out[2 * j] = 2 * X[2 * j];
      odd -= X[2 * j + 1];
      out[2 * j + 1] = 2 * odd;
    }
  }

  /**
   * r(τ)/r(0) of the band-limited signal at any (fractional) lag, evaluated
   * from the power spectrum: exact where `acf` is sampled, and between its
   * samples too (the Chebyshev recurrence runs cos(kθ) over the kept bins).
   */
  acfAt(tau: number): number {
    const r0 = this.acfZero;
    if (!(r0 > 0)) return 0;
    const low = this.lowPower;
    const K = this.cutBin;
    const theta = (2 * Math.PI * tau) / this.fftSize;
    const c1 = Math.cos(theta);
    const twoC = 2 * c1;
    let prev = 1;
    let cur = c1;
    let sum = low[0];
    for (let k = 1; k <= K; k++) {
      sum += 2 * low[k] * cur;
      const next = twoC * cur - prev;
      prev = cur;
      cur = next;
    }
    // (The Nyquist bin, weighted once rather than twice, is above the cut.)
    return sum / r0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fft.dispose();
    this.cosFft.dispose();
  }
}
