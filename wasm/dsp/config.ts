// Analysis configuration: named presets (Olaf's config_default / config_test
// idea) instead of loose numbers, and one validator that every DSP object
// runs at creation, so a bad size fails there and never inside process().

export const DSP_MIN_RATE = 8_000;
export const DSP_MAX_RATE = 96_000;

export interface PitchConfig {
  /** Lowest and highest f0 searched, Hz. */
  minHz: number;
  maxHz: number;
  /**
   * McLeod's k: the first key maximum of the NSDF at least k times the highest
   * one is the period. Lower finds the fundamental more often in noise; higher
   * resists sub-octave errors.
   */
  peakRatio: number;
  /** Clarity (NSDF peak, 0..1) at or above which a frame becomes voiced. */
  voicedClarity: number;
  /** A voiced stream stays voiced down to this clarity (hysteresis). */
  keepVoicedClarity: number;
  /** Frames quieter than this (RMS over the window, dBFS) are unvoiced whatever their clarity. */
  silenceDb: number;
  /**
   * A frame this many dB below the level of the note it belongs to is that
   * note's tail, and unvoiced: release tails ring on periodically after the
   * note has ended, and a pitch there is a false alarm.
   */
  tailDropDb: number;
}

export interface OnsetConfig {
  /** Log compression of band energies: log10(1 + gain * energy above the floor). */
  compression: number;
  /** Frames back the flux compares against (SuperFlux's mu). */
  lag: number;
  /** Adaptive threshold: the median of the detection function over this many seconds… */
  medianS: number;
  /** …times this, plus `delta`. */
  medianScale: number;
  delta: number;
  /** A peak must be the highest of the detection function over this many seconds before it. */
  preMaxS: number;
  /** Minimum inter-onset interval, seconds. */
  minIntervalS: number;
  /** Onsets in frames quieter than this (RMS, dBFS) are ignored. */
  silenceDb: number;
  /** Band energy above this many times its tracked noise floor counts; what is below is noise. */
  floorMargin: number;
  /** How fast the per-band noise floor may rise, dB per second (it falls at once). */
  floorRiseDbPerS: number;
}

export interface AnalysisConfig {
  sampleRate: number;
  /** Analysis window in samples (power of two). */
  windowSize: number;
  /** Samples between frames. */
  hopSize: number;
  pitch: PitchConfig;
  onset: OnsetConfig;
}

export type PresetName = 'config_default' | 'config_test';

export class DspConfigError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'DspConfigError';
  }
}

/** 2048 samples at 44.1 and 48 kHz, scaled with the rate so the window stays ~43–64 ms. */
export function defaultWindowSize(sampleRate: number): number {
  let n = 256;
  while (n < (2048 * sampleRate) / 48_000 - 1) n *= 2;
  return n;
}

const DEFAULT_PITCH: PitchConfig = {
  minHz: 40,
  maxHz: 2100,
  peakRatio: 0.84,
  voicedClarity: 0.6,
  keepVoicedClarity: 0.55,
  silenceDb: -65,
  tailDropDb: 30,
};

const DEFAULT_ONSET: OnsetConfig = {
  compression: 1e4,
  lag: 1,
  medianS: 0.12,
  medianScale: 1,
  delta: 1.0,
  preMaxS: 0.03,
  minIntervalS: 0.05,
  silenceDb: -70,
  floorMargin: 2,
  floorRiseDbPerS: 6,
};

export type ConfigOverrides = Partial<Omit<AnalysisConfig, 'pitch' | 'onset' | 'sampleRate'>> & {
  pitch?: Partial<PitchConfig>;
  onset?: Partial<OnsetConfig>;
};

/** A complete configuration for `sampleRate` from a named preset, with overrides. */
export function preset(name: PresetName, sampleRate: number, overrides: ConfigOverrides = {}): AnalysisConfig {
  let base: AnalysisConfig;
  const windowSize = defaultWindowSize(sampleRate);
  switch (name) {
    case 'config_default':
      base = { sampleRate, windowSize, hopSize: windowSize / 4, pitch: { ...DEFAULT_PITCH, maxHz: Math.min(DEFAULT_PITCH.maxHz, sampleRate / 4) }, onset: { ...DEFAULT_ONSET } };
      break;
    case 'config_test':
      // Small frames so unit tests run quickly; the same algorithms.
      base = { sampleRate, windowSize: windowSize / 2, hopSize: windowSize / 8, pitch: { ...DEFAULT_PITCH, minHz: 80, maxHz: Math.min(DEFAULT_PITCH.maxHz, sampleRate / 4) }, onset: { ...DEFAULT_ONSET } };
      break;
    default:
      throw new DspConfigError(`unknown preset ${String(name)}`);
  }
  const cfg: AnalysisConfig = {
    ...base,
    ...overrides,
    sampleRate,
    pitch: { ...base.pitch, ...overrides.pitch },
    onset: { ...base.onset, ...overrides.onset },
  };
  validateConfig(cfg);
  return cfg;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new DspConfigError(message);
}

/** Throws a DspConfigError naming the first thing wrong. */
export function validateConfig(c: AnalysisConfig): void {
  check(Number.isInteger(c.sampleRate) && c.sampleRate >= DSP_MIN_RATE && c.sampleRate <= DSP_MAX_RATE, `sample rate must be an integer from ${DSP_MIN_RATE} to ${DSP_MAX_RATE} Hz, got ${c.sampleRate}`);
  check(Number.isInteger(c.windowSize) && c.windowSize >= 128 && c.windowSize <= 16_384 && (c.windowSize & (c.windowSize - 1)) === 0, `window size must be a power of two from 128 to 16384, got ${c.windowSize}`);
  check(Number.isInteger(c.hopSize) && c.hopSize >= 16, `hop size must be an integer of at least 16, got ${c.hopSize}`);
  check(c.hopSize <= c.windowSize, `hop size ${c.hopSize} is larger than window size ${c.windowSize}`);
  const p = c.pitch;
  check(p.minHz > 0 && p.maxHz > p.minHz, `pitch range must satisfy 0 < minHz < maxHz, got ${p.minHz}..${p.maxHz}`);
  check(p.maxHz <= c.sampleRate / 4, `pitch maxHz ${p.maxHz} needs at least 4 samples per period: at most ${c.sampleRate / 4} Hz at ${c.sampleRate} Hz`);
  const maxLag = Math.ceil(c.sampleRate / p.minHz);
  check(maxLag <= Math.floor(0.65 * c.windowSize), `pitch minHz ${p.minHz} needs a period of ${maxLag} samples, more than 65% of the ${c.windowSize}-sample window: raise minHz or the window`);
  check(p.peakRatio > 0 && p.peakRatio <= 1, 'pitch peakRatio must be in (0, 1]');
  check(p.voicedClarity > 0 && p.voicedClarity <= 1 && p.keepVoicedClarity > 0 && p.keepVoicedClarity <= p.voicedClarity, 'pitch clarity thresholds must satisfy 0 < keepVoicedClarity <= voicedClarity <= 1');
  check(Number.isFinite(p.silenceDb) && Number.isFinite(p.tailDropDb) && p.tailDropDb > 0, 'pitch silenceDb and tailDropDb must be finite, tailDropDb > 0');
  const o = c.onset;
  check(o.compression > 0 && Number.isFinite(o.compression), 'onset compression must be positive');
  check(Number.isInteger(o.lag) && o.lag >= 1 && o.lag <= 8, 'onset lag must be an integer from 1 to 8 frames');
  check(o.medianS > 0 && o.medianS <= 2 && o.preMaxS >= 0 && o.preMaxS <= 1, 'onset medianS must be in (0, 2] s and preMaxS in [0, 1] s');
  check(o.minIntervalS >= 0 && o.minIntervalS <= 2, 'onset minIntervalS must be in [0, 2] s');
  check(o.medianScale >= 0 && o.delta >= 0 && o.floorMargin >= 1 && o.floorRiseDbPerS > 0, 'onset medianScale and delta must be >= 0, floorMargin >= 1 and floorRiseDbPerS > 0');
  check(Number.isFinite(o.silenceDb), 'onset silenceDb must be finite');
}
