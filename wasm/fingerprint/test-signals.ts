// Deterministic test audio for the fingerprint tests and the benchmark:
// seeded "music" (several harmonic voices playing notes of a scale over a
// beat, with percussion) and the degradations a live stream meets (noise at
// a given SNR, gain, telephone band, speed change). Not used at run time.
import { Resampler } from './resampler.ts';

import { seededRandom as rng } from '../random.ts';

export { rng };

const SCALE = [0, 2, 3, 5, 7, 8, 10];

/** A synthetic piece: `voices` melodic lines of harmonic notes plus noise-burst percussion. */
export function synthMusic(seed: number, seconds: number, sampleRate = 22050, voices = 3): Float32Array {
  const rand = rng(seed);
  const n = Math.round(seconds * sampleRate);
  const out = new Float32Array(n);
  const bpm = 80 + Math.floor(rand() * 80);
  const beat = 60 / bpm;
  const root = 40 + Math.floor(rand() * 12);
  for (let v = 0; v < voices; v++) {
    const octave = 12 * (v + 1);
    const harmonics = 2 + Math.floor(rand() * 5);
    const decay = 1 + rand() * 4;
    const amp = 0.25 / voices;
    let t = 0;
    while (t < seconds) {
      const len = beat * [0.5, 1, 1, 2][Math.floor(rand() * 4)];
      const degree = SCALE[Math.floor(rand() * SCALE.length)];
      const midi = root + octave + degree;
      const f0 = 440 * 2 ** ((midi - 69) / 12);
      const start = Math.round(t * sampleRate);
      const end = Math.min(n, Math.round((t + len) * sampleRate));
      for (let h = 1; h <= harmonics; h++) {
        const f = f0 * h;
        if (f > sampleRate / 2 - 500) break;
        const a = amp / h;
        const w = (2 * Math.PI * f) / sampleRate;
        for (let i = start; i < end; i++) {
          const x = (i - start) / sampleRate;
          const env = Math.min(1, x * 200) * Math.exp(-decay * x);
          out[i] += a * env * Math.sin(w * (i - start));
        }
      }
      t += len;
    }
  }
  // Percussion on the beat: short decaying noise bursts.
  for (let t = 0; t < seconds; t += beat) {
    if (rand() < 0.3) continue;
    const start = Math.round(t * sampleRate);
    const len = Math.round(0.08 * sampleRate);
    const level = 0.05 + 0.1 * rand();
    for (let i = 0; i < len && start + i < n; i++) out[start + i] += level * (rand() * 2 - 1) * Math.exp((-i / len) * 6);
  }
  return out;
}

export function rms(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Adds white Gaussian noise at `snrDb` relative to the signal's own RMS. */
export function addNoise(x: Float32Array, snrDb: number, seed = 1): Float32Array {
  const rand = rng(seed);
  const sigma = rms(x) / 10 ** (snrDb / 20);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const g = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
    y[i] = x[i] + sigma * g;
  }
  return y;
}

/** White Gaussian noise at RMS `level`. */
export function noise(seconds: number, sampleRate: number, level = 0.1, seed = 7): Float32Array {
  const rand = rng(seed);
  const y = new Float32Array(Math.round(seconds * sampleRate));
  for (let i = 0; i < y.length; i++) y[i] = level * Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  return y;
}

export function gain(x: Float32Array, db: number): Float32Array {
  const g = 10 ** (db / 20);
  return x.map((v) => v * g);
}

/** Second-order Butterworth sections (RBJ cookbook), applied forward once. */
function biquad(x: Float32Array, sampleRate: number, type: 'highpass' | 'lowpass', hz: number): Float32Array {
  const w0 = (2 * Math.PI * hz) / sampleRate;
  const alpha = Math.sin(w0) / Math.SQRT2;
  const cos = Math.cos(w0);
  const b0 = type === 'lowpass' ? (1 - cos) / 2 : (1 + cos) / 2;
  const b1 = type === 'lowpass' ? 1 - cos : -(1 + cos);
  const b2 = b0;
  const a0 = 1 + alpha;
  const a1 = -2 * cos;
  const a2 = 1 - alpha;
  const y = new Float32Array(x.length);
  let x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const v = (b0 * x[i] + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
    x2 = x1;
    x1 = x[i];
    y2 = y1;
    y1 = v;
    y[i] = v;
  }
  return y;
}

/** Telephone band: 300–3400 Hz, 4th-order edges. */
export function telephone(x: Float32Array, sampleRate: number): Float32Array {
  let y = biquad(x, sampleRate, 'highpass', 300);
  y = biquad(y, sampleRate, 'highpass', 300);
  y = biquad(y, sampleRate, 'lowpass', 3400);
  return biquad(y, sampleRate, 'lowpass', 3400);
}

/** Plays `x` `speed` times as fast (pitch and tempo together, like a turntable or a tape). */
export function changeSpeed(x: Float32Array, sampleRate: number, speed: number): Float32Array {
  // Played s times fast, the samples are the original's at rate sampleRate·s; resample to sampleRate.
  return Resampler.convert(x, sampleRate * speed, sampleRate);
}
