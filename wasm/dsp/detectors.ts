// Single-purpose objects for callers that want one measure on windows they
// frame themselves (aubio's pitch object): create, process(window), dispose.
// The pipeline is the better deal when more than one measure is wanted: it
// runs the spectrum once for all of them.
import type { KissFFT } from '../kissfft.ts';
import { preset, type ConfigOverrides } from './config.ts';
import { SharedSpectrum } from './spectrum.ts';
import { PitchTracker, type PitchResult } from './pitch.ts';
import { DB_FLOOR } from './dynamics.ts';

export class PitchDetector {
  readonly windowSize: number;
  readonly sampleRate: number;
  private readonly spectrum: SharedSpectrum;
  private readonly tracker: PitchTracker;

  /** Windows of `windowSize` samples (default: the preset's for the rate). */
  constructor(kiss: KissFFT, sampleRate: number, overrides: ConfigOverrides = {}) {
    const cfg = preset('config_default', sampleRate, overrides);
    this.windowSize = cfg.windowSize;
    this.sampleRate = sampleRate;
    this.spectrum = new SharedSpectrum(kiss, cfg.windowSize, sampleRate);
    this.tracker = new PitchTracker(cfg, sampleRate, this.spectrum.decimation);
  }

  /** Estimates the pitch of one window; the result object is reused. */
  process(window: Float32Array): PitchResult {
    this.spectrum.analyze(window);
    const e = this.spectrum.energy / this.windowSize;
    return this.tracker.process(this.spectrum, e > 1e-12 ? 10 * Math.log10(e) : DB_FLOOR);
  }

  reset(): void {
    this.tracker.reset();
  }

  dispose(): void {
    this.spectrum.dispose();
  }
}
