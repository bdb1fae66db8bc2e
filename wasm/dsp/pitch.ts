// Pitch: McLeod & Wyvill's normalised square difference function (NSDF),
// "A smarter way to find pitch" (ICMC 2005), on the FFT autocorrelation of
// SharedSpectrum.
//
//   n(τ) = 2 r(τ) / m(τ),  r(τ) = Σ x_j x_{j+τ},  m(τ) = Σ x_j² + x_{j+τ}²
//
// over the overlap j = 0..N-1-τ, so a periodic frame scores 1 at its period
// whatever its level (YIN's difference function is m - 2r). The period is
// the first "key maximum" (the highest point of each positive lobe after the
// first zero crossing) that reaches `peakRatio` times the highest one: this is
// the octave-error care — a later lobe at 2P, 3P… is about as high as the one
// at P, and taking the first that is nearly the highest avoids sub-octave
// errors without preferring the octave above (which needs a lobe at P/2 that
// only strong even harmonics give). The lobe is located on the decimated
// autocorrelation, then refined by a parabola through the exact band-limited
// NSDF at full-rate lags (SharedSpectrum.acfAt), so a 2 kHz tone is placed to
// within a cent or two.
//
// Voicing: the NSDF peak is the clarity (confidence); a frame is voiced at
// `voicedClarity` and stays voiced down to `keepVoicedClarity`. Frames below
// `silenceDb` are unvoiced, and so is a note's release: a release tail rings
// on as periodically as the note did, so clarity cannot tell it; its level
// can: a release (dampers, the end of a bow or breath) makes the level fall
// suddenly faster than the note had been decaying. Once the level of the
// current note falls faster than RELEASE_DB_PER_S, and RELEASE_ACCELERATION times as
// fast as it fell on average since its peak, and lies RELEASE_DROP_DB under that
// peak (or `tailDropDb` under it at any rate), the note is over until an
// onset, a new pitch or a rise in level. A struck note that simply decays
// (a high piano string, a marimba bar) keeps its rate and stays voiced.
import type { AnalysisConfig } from './config.ts';
import type { SharedSpectrum } from './spectrum.ts';

export interface PitchResult {
  voiced: boolean;
  /** f0 in Hz of the best candidate (also set when unvoiced, 0 when there is none). */
  hz: number;
  /** NSDF at the chosen period, 0..1. */
  clarity: number;
}

const MAX_KEY_MAXIMA = 64;
/** Periods shorter than this (samples) get a second parabola at quarter-sample spacing. */
const FINE_FIT_BELOW_LAG = 40;
/** A new note starts when f0 moves more than this many semitones. */
const NOTE_CHANGE_SEMITONES = 0.75;
/** A release: the level falling at least this fast (over LEVEL_SPAN frames)… */
const RELEASE_DB_PER_S = 45;
/** …and this many times as fast as the note decayed before… */
const RELEASE_ACCELERATION = 2;
/** …and this far under the note's peak level. */
const RELEASE_DROP_DB = 8;
/** A released note comes back only if the level climbs this far above its lowest since. */
const RELEASE_RISE_DB = 6;
/** Frames the level slope is measured over. */
const LEVEL_SPAN = 6;

export class PitchTracker {
  readonly result: PitchResult = { voiced: false, hz: 0, clarity: 0 };
  private readonly sampleRate: number;
  private readonly lagMin: number;
  private readonly lagMax: number;
  private readonly peakRatio: number;
  private readonly voicedClarity: number;
  private readonly keepClarity: number;
  private readonly silenceDb: number;
  private readonly tailDropDb: number;
  private readonly nsdf: Float32Array;
  private readonly keyIndex: Int32Array;
  private readonly keyPos: Float64Array;
  private readonly keyValue: Float64Array;
  private wasVoiced = false;
  private noteHz = 0;
  private notePeakDb = -Infinity;
  private released = false;
  private frame = 0;
  private notePeakFrame = 0;
  private noteStartFrame = 0;
  private releaseMinDb = 0;
  private readonly levels = new Float64Array(LEVEL_SPAN);
  private levelPos = 0;
  private readonly releaseSlope: number;

  /** `rate` is the rate of the analysed samples, `decimation` the lag step of their autocorrelation. */
  constructor(cfg: AnalysisConfig, rate: number, decimation: number) {
    this.sampleRate = rate;
    this.lagMin = rate / cfg.pitch.maxHz;
    this.lagMax = rate / cfg.pitch.minHz;
    this.peakRatio = cfg.pitch.peakRatio;
    this.voicedClarity = cfg.pitch.voicedClarity;
    this.keepClarity = cfg.pitch.keepVoicedClarity;
    this.silenceDb = cfg.pitch.silenceDb;
    this.tailDropDb = cfg.pitch.tailDropDb;
    this.nsdf = new Float32Array(Math.ceil(this.lagMax / decimation) + 3);
    this.keyIndex = new Int32Array(MAX_KEY_MAXIMA);
    this.keyPos = new Float64Array(MAX_KEY_MAXIMA);
    this.keyValue = new Float64Array(MAX_KEY_MAXIMA);
    this.releaseSlope = (-RELEASE_DB_PER_S * LEVEL_SPAN * cfg.hopSize) / cfg.sampleRate;
    this.levels.fill(-200);
  }

  reset(): void {
    this.wasVoiced = false;
    this.noteHz = 0;
    this.notePeakDb = -Infinity;
    this.released = false;
    this.frame = 0;
    this.notePeakFrame = 0;
    this.levels.fill(-200);
    this.levelPos = 0;
    this.result.voiced = false;
    this.result.hz = 0;
    this.result.clarity = 0;
  }

  /** Estimates f0 from an analysed spectrum; `levelDb` is the window's RMS in dBFS. */
  process(s: SharedSpectrum, levelDb: number): PitchResult {
    const res = this.result;
    this.estimate(s);
    const lv = this.levels;
    const oldest = lv[this.levelPos];
    lv[this.levelPos] = levelDb;
    this.levelPos = (this.levelPos + 1) % lv.length;
    const slope = levelDb - oldest; // dB over LEVEL_SPAN frames
    const frame = this.frame++;
    let voiced = res.hz > 0 && res.clarity >= (this.wasVoiced ? this.keepClarity : this.voicedClarity) && levelDb >= this.silenceDb;
    if (voiced) {
      const newNote = this.noteHz === 0 || Math.abs(12 * Math.log2(res.hz / this.noteHz)) > NOTE_CHANGE_SEMITONES;
      if (newNote) {
        this.noteHz = res.hz;
        this.restartNote(levelDb, frame);
        this.released = false;
      } else if (levelDb > this.notePeakDb) {
        this.notePeakDb = levelDb;
        this.notePeakFrame = frame;
      }
      if (this.released) {
        if (levelDb < this.releaseMinDb) this.releaseMinDb = levelDb;
        else if (levelDb > this.releaseMinDb + RELEASE_RISE_DB) {
          this.released = false;
          this.notePeakDb = levelDb;
          this.notePeakFrame = frame;
        }
      } else if (
        (slope <= this.releaseSlope && levelDb < this.notePeakDb - RELEASE_DROP_DB && slope < RELEASE_ACCELERATION * this.decayBefore(frame, oldest)) ||
        levelDb < this.notePeakDb - this.tailDropDb
      ) {
        this.released = true;
        this.releaseMinDb = levelDb;
      }
      if (this.released) voiced = false;
    } else if (!this.released) {
      this.noteHz = 0;
      this.notePeakDb = -Infinity;
    }
    this.wasVoiced = voiced;
    res.voiced = voiced;
    return res;
  }

  /** The pipeline tells the tracker about onsets: a re-struck note starts again. */
  noteOnset(levelDb: number): void {
    this.restartNote(levelDb, this.frame);
    this.released = false;
  }

  /**
   * A note (re)starts: its peak level is the loudest of this and the last few
   * frames, so a pitch that settles (or an onset confirmed) during the attack
   * does not put the peak below the attack.
   */
  private restartNote(levelDb: number, frame: number): void {
    const lv = this.levels;
    this.notePeakDb = levelDb;
    this.notePeakFrame = frame;
    this.noteStartFrame = frame;
    // A frame `tailDropDb` or more above this one cannot be this note's
    // attack: the note would be a release tail on its very first frame. It is
    // something else, a click or a glitch (one wild sample puts a window 80 dB
    // up), and taking it as the peak would hold the note released, pitch
    // silent, for as long as the note then lasts.
    const ceiling = levelDb + this.tailDropDb;
    // The ring holds the last LEVEL_SPAN levels, the newest just before levelPos.
    for (let age = 1; age < LEVEL_SPAN; age++) {
      const v = lv[(this.levelPos - 1 - age + 2 * lv.length) % lv.length];
      if (v > this.notePeakDb && v < ceiling) {
        this.notePeakDb = v;
        this.notePeakFrame = frame - age;
      }
    }
  }

  /**
   * The note's average decay from its peak to LEVEL_SPAN frames ago, in dB
   * per LEVEL_SPAN frames (0 when the peak is more recent). -Infinity, so no
   * release, within 2·LEVEL_SPAN frames of the note's start: a struck
   * string's fast early decay is not a release.
   */
  private decayBefore(frame: number, levelThen: number): number {
    if (frame - this.noteStartFrame < 2 * LEVEL_SPAN) return -Infinity;
    const frames = frame - LEVEL_SPAN - this.notePeakFrame;
    if (frames < 1) return 0;
    return Math.min(0, ((levelThen - this.notePeakDb) / frames) * LEVEL_SPAN);
  }

  private nsdfAt(s: SharedSpectrum, tau: number): number {
    const n = s.windowSize;
    const cum = s.cumEnergy;
    const t = Math.max(0, Math.min(n - 1, tau));
    const ti = Math.floor(t);
    const f = t - ti;
    // m(τ) by linear interpolation of the prefix sums between integer lags.
    const mLo = cum[n - ti] + cum[n] - cum[ti];
    const mHi = ti + 1 <= n ? cum[n - ti - 1] + cum[n] - cum[ti + 1] : 0;
    const m = mLo + (mHi - mLo) * f;
    if (!(m > 0)) return 0;
    // Whole lags on the autocorrelation's grid are read, not evaluated.
    const d = s.decimation;
    const r = f === 0 && ti % d === 0 && ti / d < s.acfLength ? s.acf[ti / d] * s.acfScale : s.acfAt(t);
    return (2 * r * s.energy) / m;
  }

  private estimate(s: SharedSpectrum): void {
    const res = this.result;
    res.hz = 0;
    res.clarity = 0;
    const e = s.energy;
    if (!(e > 1e-12)) return;
    const d = s.decimation;
    const n = s.windowSize;
    const cum = s.cumEnergy;
    const acf = s.acf;
    const nsdf = this.nsdf;
    const iMax = Math.min(nsdf.length - 1, s.acfLength - 1, Math.floor((n - 2) / d));
    const twoE = 2 * e * s.acfScale;
    for (let i = 0; i <= iMax; i++) {
      const tau = i * d;
      const m = cum[n - tau] + e - cum[tau];
      nsdf[i] = m > 0 ? (acf[i] * twoE) / m : 0;
    }
    // Skip the lobe around lag 0, then take the top of each positive lobe.
    let i = 1;
    while (i <= iMax && nsdf[i] > 0) i++;
    let keys = 0;
    let best = -1;
    let bestI = -1;
    const minI = Math.max(1, Math.floor(this.lagMin / d) - 1);
    const maxI = Math.ceil(this.lagMax / d) + 1;
    for (; i <= iMax; i++) {
      const v = nsdf[i];
      if (v > 0) {
        if (v > best) {
          best = v;
          bestI = i;
        }
      }
      if ((v <= 0 || i === iMax) && bestI > 0) {
        if (bestI < iMax && bestI >= minI && bestI <= maxI && keys < MAX_KEY_MAXIMA) {
          const a = nsdf[bestI - 1];
          const b = nsdf[bestI];
          const c = nsdf[bestI + 1];
          const den = a - 2 * b + c;
          const delta = den < 0 ? Math.max(-0.5, Math.min(0.5, (0.5 * (a - c)) / den)) : 0;
          this.keyIndex[keys] = bestI;
          this.keyPos[keys] = (bestI + delta) * d;
          this.keyValue[keys] = b - 0.25 * (a - c) * delta;
          keys++;
        }
        best = -1;
        bestI = -1;
      }
    }
    if (keys === 0) return;
    let top = 0;
    for (let k = 0; k < keys; k++) {
      const p = this.keyPos[k];
      if (p >= this.lagMin * 0.97 && p <= this.lagMax * 1.03 && this.keyValue[k] > top) top = this.keyValue[k];
    }
    if (top <= 0) return;
    let chosen = -1;
    for (let k = 0; k < keys; k++) {
      const p = this.keyPos[k];
      if (p < this.lagMin * 0.97 || p > this.lagMax * 1.03) continue;
      if (this.keyValue[k] >= this.peakRatio * top) {
        chosen = k;
        break;
      }
    }
    if (chosen < 0) return;
    let tau = this.keyPos[chosen];
    let clarity = this.keyValue[chosen];
    // Refine with the exact band-limited NSDF: climb to the best integer lag,
    // fit a parabola there, then fit again at a quarter-sample spacing (a
    // 2 kHz period is only ~11 samples at 22 kHz, where one parabola over
    // whole samples is off by several cents).
    let t = Math.round(tau);
    let a = this.nsdfAt(s, t - 1);
    let b = this.nsdfAt(s, t);
    let c = this.nsdfAt(s, t + 1);
    for (let step = 0; step < 3; step++) {
      if (a > b && a >= c) {
        t--;
        c = b;
        b = a;
        a = this.nsdfAt(s, t - 1);
      } else if (c > b) {
        t++;
        a = b;
        b = c;
        c = this.nsdfAt(s, t + 1);
      } else break;
    }
    let den = a - 2 * b + c;
    tau = t;
    clarity = b;
    if (den < 0) {
      tau = t + Math.max(-1, Math.min(1, (0.5 * (a - c)) / den));
      clarity = b - 0.25 * (a - c) * (tau - t);
    }
    // Over whole samples a parabola places long periods to well under a
    // cent; short ones (high notes) get the finer second fit.
    if (den < 0 && tau < FINE_FIT_BELOW_LAG) {
      const h = 0.25;
      a = this.nsdfAt(s, tau - h);
      b = this.nsdfAt(s, tau);
      c = this.nsdfAt(s, tau + h);
      den = a - 2 * b + c;
      if (den < 0) {
        const delta = Math.max(-1, Math.min(1, (0.5 * (a - c)) / den));
        tau += delta * h;
        clarity = b - 0.25 * (a - c) * delta;
      } else clarity = b;
    }
    if (tau < this.lagMin * 0.97 || tau > this.lagMax * 1.03) return;
    res.hz = this.sampleRate / tau;
    res.clarity = Math.max(0, Math.min(1, clarity));
  }
}
