// Dynamics per hop: RMS and peak in dBFS over the hop centred on the frame,
// and a MIDI-style velocity from the RMS.
//
// dBFS here is relative to a full-scale square wave (RMS 1), so a full-scale
// sine reads -3.01 dB RMS and 0 dB peak. Velocity follows the General MIDI
// convention that level goes as 40·log10(velocity/127) dB: a full-scale sine
// is 127, every 40 dB below it divides the velocity by ten, and silence is 0.

export interface DynamicsResult {
  rmsDb: number;
  peakDb: number;
  /** 0..127 */
  velocity: number;
}

/** The floor reported for digital silence: JSON has no -Infinity. */
export const DB_FLOOR = -120;
const SINE_RMS_DB = -3.0103;

export function toDb(amplitude: number): number {
  return amplitude > 1e-6 ? Math.max(DB_FLOOR, 20 * Math.log10(amplitude)) : DB_FLOOR;
}

export function velocityFromRmsDb(rmsDb: number): number {
  if (rmsDb <= DB_FLOOR) return 0;
  const v = Math.round(127 * 10 ** ((rmsDb - SINE_RMS_DB) / 40));
  return Math.max(0, Math.min(127, v));
}

export class DynamicsMeter {
  readonly result: DynamicsResult = { rmsDb: DB_FLOOR, peakDb: DB_FLOOR, velocity: 0 };
  private readonly start: number;
  private readonly length: number;

  constructor(windowSize: number, hopSize: number) {
    if (hopSize > windowSize) throw new RangeError(`hop size ${hopSize} is larger than window size ${windowSize}`);
    this.start = Math.floor(windowSize / 2 - hopSize / 2);
    this.length = hopSize;
  }

  /** Measures the hop centred in `window`. */
  process(window: Float32Array): DynamicsResult {
    let sq = 0;
    let peak = 0;
    const end = this.start + this.length;
    for (let i = this.start; i < end; i++) {
      const v = window[i];
      sq += v * v;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
    }
    const r = this.result;
    r.rmsDb = toDb(Math.sqrt(sq / this.length));
    r.peakDb = toDb(peak);
    r.velocity = velocityFromRmsDb(r.rmsDb);
    return r;
  }
}
