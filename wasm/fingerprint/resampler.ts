// A streaming resampler for any rate ratio: band-limited interpolation with a
// Kaiser-windowed sinc (Smith & Gossett 1984, "A flexible sampling-rate
// conversion method"), tabulated once as a bank of polyphase filters (the
// nearest of PHASES sub-sample positions is used, a timing error below
// 1/(2·PHASES) of a sample). Output sample n sits exactly at input time
// n / ratio, so timing never drifts however the input is chunked; integer
// ratios such as 22050 → 11025 always hit phase 0 and are exact.

export interface ResamplerOptions {
  /** Zero crossings of the sinc on each side; more is sharper and slower. */
  zeroCrossings?: number;
  /** Passband edge as a fraction of the lower Nyquist frequency. */
  rolloff?: number;
  /** Kaiser window beta (stopband attenuation ~ 8.7·beta dB for large beta). */
  beta?: number;
  /** Largest input chunk `process` accepts. */
  maxChunk?: number;
  /**
   * Design for a band instead of the full spectrum (downsampling only): keep
   * everything below `passHz` and reject, by about 60 dB, what would alias
   * below `passHz`. A fingerprinter that only looks below 4 kHz needs a far
   * shorter filter than a resampler meant for listening.
   */
  band?: { passHz: number; stopHz: number };
}

const PHASES = 256;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  readonly inputRate: number;
  readonly outputRate: number;
  readonly ratio: number;
  readonly maxChunk: number;
  private readonly passthrough: boolean;
  /** Kernel half-length in input samples. */
  private readonly halfLen: number;
  /** Taps each side of the centre sample. */
  private readonly taps: number;
  /** PHASES+1 sparse filters (offset, coefficient) of at most 2·taps+1 taps: filter p is the kernel shifted by p/PHASES (phase 0 only for an integer decimation). */
  private readonly tapIndex: Int32Array;
  private readonly tapValue: Float32Array;
  private readonly tapCount: Int32Array;
  /** inputRate / outputRate when it is an integer (every output on phase 0), else 0. */
  private readonly decimation: number;
  /** Phase 0's kernel is symmetric: its centre tap, and the distances and values of its nonzero taps on one side. */
  private readonly centreTap: number;
  private readonly sideDist: Int32Array;
  private readonly sideValue: Float32Array;
  private readonly buf: Float32Array;
  /** Absolute input index of buf[0], and how many samples buf holds. */
  private base: number;
  private filled = 0;
  /** Index of the next output sample. */
  private produced = 0;

  constructor(inputRate: number, outputRate: number, opts: ResamplerOptions = {}) {
    if (!(inputRate > 0) || !(outputRate > 0) || !Number.isFinite(inputRate) || !Number.isFinite(outputRate)) {
      throw new RangeError(`sample rates must be positive and finite, got ${inputRate} → ${outputRate}`);
    }
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    this.ratio = outputRate / inputRate;
    this.maxChunk = opts.maxChunk ?? 65536;
    this.passthrough = inputRate === outputRate;
    let fc: number; // cutoff, cycles per input sample
    let beta: number;
    if (opts.band && this.ratio < 1) {
      const { passHz, stopHz } = opts.band;
      if (!(passHz > 0 && stopHz > passHz)) throw new RangeError(`band needs 0 < passHz < stopHz, got ${passHz}..${stopHz}`);
      const nyquistOut = outputRate / 2;
      // At the output Nyquist exactly, an integer ratio gives a kernel whose every ratio-th tap is zero.
      fc = (passHz <= nyquistOut && nyquistOut <= stopHz ? nyquistOut : (passHz + stopHz) / 2) / inputRate;
      const width = (stopHz - passHz) / inputRate;
      beta = 5.65; // Kaiser's formula for 60 dB
      this.halfLen = Math.max(2, (60 - 7.95) / (14.36 * width) / 2);
    } else {
      const zc = opts.zeroCrossings ?? 8;
      fc = 0.5 * Math.min(1, this.ratio) * (opts.rolloff ?? 0.92);
      beta = opts.beta ?? 8;
      this.halfLen = zc / (2 * fc);
    }
    this.taps = Math.ceil(this.halfLen);
    const len = 2 * this.taps + 1;
    const m = inputRate / outputRate;
    this.decimation = Number.isInteger(m) && m > 1 ? m : 0;
    // An integer decimation only ever uses phase 0: the other 256 filters
    // (a Bessel function per tap) were most of a live stream's setup.
    const phases = this.decimation ? 0 : PHASES;
    this.tapIndex = new Int32Array((phases + 1) * len);
    this.tapValue = new Float32Array((phases + 1) * len);
    this.tapCount = new Int32Array(phases + 1);
    const i0b = besselI0(beta);
    for (let p = 0; p <= phases; p++) {
      const frac = p / PHASES;
      let n = 0;
      for (let j = -this.taps; j <= this.taps; j++) {
        const d = j - frac; // input samples from the output instant
        const u = Math.abs(d) / this.halfLen;
        const w = u >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - u * u)) / i0b;
        const x = 2 * fc * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const h = 2 * fc * sinc * w;
        // Zero taps (the sinc's zero crossings, the window's ends) are skipped.
        if (Math.abs(h) < 1e-9) continue;
        this.tapIndex[p * len + n] = j + this.taps;
        this.tapValue[p * len + n] = h;
        n++;
      }
      this.tapCount[p] = n;
    }
    let centre = 0;
    const dist: number[] = [];
    const value: number[] = [];
    for (let j = 0; j < this.tapCount[0]; j++) {
      const d = this.tapIndex[j] - this.taps;
      if (d === 0) centre = this.tapValue[j];
      else if (d > 0) {
        dist.push(d);
        value.push(this.tapValue[j]);
      }
    }
    this.centreTap = centre;
    this.sideDist = Int32Array.from(dist);
    this.sideValue = Float32Array.from(value);
    const span = this.taps + 2;
    this.buf = new Float32Array(2 * span + this.maxChunk + 8);
    // Samples before the stream starts are silence, so the first outputs need no special case.
    this.base = -span;
    this.filled = span;
  }

  /** The most outputs one call can produce for `inputLength` inputs. */
  maxOutput(inputLength: number): number {
    return Math.ceil(inputLength * this.ratio) + 2;
  }

  /**
   * Consumes `input` and writes as many outputs as the samples seen so far
   * determine into `output` (which must hold `maxOutput(input.length)`).
   * Returns the number written.
   */
  process(input: Float32Array, output: Float32Array): number {
    if (input.length > this.maxChunk) throw new RangeError(`chunk of ${input.length} samples exceeds maxChunk ${this.maxChunk}`);
    if (this.passthrough) {
      output.set(input);
      return input.length;
    }
    if (output.length < this.maxOutput(input.length)) throw new RangeError('output buffer too small');
    this.buf.set(input, this.filled);
    this.filled += input.length;
    const lastIn = this.base + this.filled - 1; // newest absolute input index
    const tapIndex = this.tapIndex;
    const tapValue = this.tapValue;
    const tapCount = this.tapCount;
    const taps = this.taps;
    const len = 2 * taps + 1;
    const buf = this.buf;
    const base = this.base;
    let n = 0;
    if (this.decimation) {
      // Integer decimation (22050 → 11025): phase 0 every time, no per-output
      // division or rounding, the counters in locals.
      // The kernel is symmetric there, so each coefficient multiplies the sum
      // of the two samples it weighs: half the multiplies.
      const m = this.decimation;
      const dist = this.sideDist;
      const value = this.sideValue;
      const sides = dist.length;
      const centre = this.centreTap;
      let k0 = this.produced * m;
      let produced = this.produced;
      if (sides <= 8) {
        // Up to eight coefficients in locals, the loop over them unrolled:
        // reloading each tap's distance and value per output cost twice the
        // arithmetic. Missing taps weigh 0 and add +0, so the sums are the
        // generic loop's, term by term.
        const d0 = dist[0] ?? 0, d1 = dist[1] ?? 0, d2 = dist[2] ?? 0, d3 = dist[3] ?? 0;
        const d4 = dist[4] ?? 0, d5 = dist[5] ?? 0, d6 = dist[6] ?? 0, d7 = dist[7] ?? 0;
        const v0 = value[0] ?? 0, v1 = value[1] ?? 0, v2 = value[2] ?? 0, v3 = value[3] ?? 0;
        const v4 = value[4] ?? 0, v5 = value[5] ?? 0, v6 = value[6] ?? 0, v7 = value[7] ?? 0;
        while (k0 + taps <= lastIn) {
          const c = k0 - base;
          let acc = centre * buf[c];
          acc += v0 * (buf[c - d0] + buf[c + d0]);
          acc += v1 * (buf[c - d1] + buf[c + d1]);
          acc += v2 * (buf[c - d2] + buf[c + d2]);
          acc += v3 * (buf[c - d3] + buf[c + d3]);
          acc += v4 * (buf[c - d4] + buf[c + d4]);
          acc += v5 * (buf[c - d5] + buf[c + d5]);
          acc += v6 * (buf[c - d6] + buf[c + d6]);
          acc += v7 * (buf[c - d7] + buf[c + d7]);
          output[n++] = acc;
          produced++;
          k0 += m;
        }
      } else {
        while (k0 + taps <= lastIn) {
          const c = k0 - base;
          let acc = centre * buf[c];
          for (let j = 0; j < sides; j++) acc += value[j] * (buf[c - dist[j]] + buf[c + dist[j]]);
          output[n++] = acc;
          produced++;
          k0 += m;
        }
      }
      this.produced = produced;
    } else {
      for (;;) {
        const t = this.produced / this.ratio; // input time of this output
        let k0 = Math.floor(t);
        let p = Math.round((t - k0) * PHASES);
        if (p === PHASES) {
          k0++;
          p = 0;
        }
        if (k0 + taps > lastIn) break;
        const f = p * len;
        const end = f + tapCount[p];
        const s0 = k0 - taps - base;
        let acc = 0;
        for (let j = f; j < end; j++) acc += buf[s0 + tapIndex[j]] * tapValue[j];
        output[n++] = acc;
        this.produced++;
      }
    }
    // Keep only the history the next output still needs.
    const keepFrom = Math.floor(this.produced / this.ratio) - this.taps - 1;
    const drop = keepFrom - base;
    if (drop > 0) {
      buf.copyWithin(0, drop, this.filled);
      this.filled -= drop;
      this.base += drop;
    }
    return n;
  }

  /** Resamples a whole signal at once (ingestion, tests). */
  static convert(input: Float32Array, inputRate: number, outputRate: number, opts: ResamplerOptions = {}): Float32Array {
    if (inputRate === outputRate) return input.slice();
    const chunk = 16384;
    const r = new Resampler(inputRate, outputRate, { ...opts, maxChunk: chunk });
    const out = new Float32Array(r.maxOutput(input.length) + r.maxOutput(chunk) + Math.ceil(r.taps * r.ratio) + 4);
    const tmp = new Float32Array(r.maxOutput(chunk));
    let n = 0;
    for (let i = 0; i < input.length; i += chunk) {
      const got = r.process(input.subarray(i, Math.min(input.length, i + chunk)), tmp);
      out.set(tmp.subarray(0, got), n);
      n += got;
    }
    // Flush the kernel's look-ahead with silence so the tail is not lost.
    const want = Math.floor(input.length * r.ratio);
    const zeros = new Float32Array(Math.min(chunk, r.taps + 2));
    while (n < want) {
      const got = r.process(zeros, tmp);
      out.set(tmp.subarray(0, Math.min(got, want - n)), n);
      n += Math.min(got, want - n);
    }
    return out.subarray(0, want);
  }
}
