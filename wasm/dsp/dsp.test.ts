import { describe, expect, it } from 'vitest';
import { loadKissFFT } from '../kissfft-node.ts';
import { compareCases, harmonicTone, seededNoise, sharedCases, type CaseSummary, CLICK_TIMES } from './dsp.shared-cases.ts';
import golden from './dsp.golden.json';
import { AnalysisPipeline, type AnalysisFrame } from './pipeline.ts';
import { preset, DspConfigError, validateConfig } from './config.ts';
import { describePitch, hzToMidi, midiName, midiToHz } from './notes.ts';
import { PitchDetector } from './detectors.ts';
import { velocityFromRmsDb } from './dynamics.ts';
import { analyzeSamples } from './offline.ts';
import { resample } from './resample.ts';
import { SharedSpectrum } from './spectrum.ts';

const kiss = await loadKissFFT();

interface Collected {
  frames: Array<{ t: number; voiced: boolean; hz: number; clarity: number; rms: number; peak: number; velocity: number }>;
  onsets: number[];
}

function analyse(x: Float32Array, sampleRate: number, chunk = 1000): Collected {
  const p = AnalysisPipeline.fromPreset(kiss, 'config_default', sampleRate);
  const out: Collected = { frames: [], onsets: [] };
  const cb = (f: AnalysisFrame) => {
    out.frames.push({ t: f.time, voiced: f.pitch.voiced, hz: f.pitch.hz, clarity: f.pitch.clarity, rms: f.dynamics.rmsDb, peak: f.dynamics.peakDb, velocity: f.dynamics.velocity });
    if (f.onsetCount) out.onsets.push(f.onsetTime);
  };
  for (let i = 0; i < x.length; i += chunk) p.push(x.subarray(i, i + chunk), cb);
  p.flush(cb);
  p.dispose();
  return out;
}

/** Frames well inside [from, to): away from the edges where the window straddles them. */
function inside(c: Collected, from: number, to: number, margin = 0.05) {
  return c.frames.filter((f) => f.t >= from + margin && f.t < to - margin);
}

describe('notes', () => {
  it('names MIDI notes and measures cents', () => {
    expect(midiName(60)).toBe('C4');
    expect(midiName(69)).toBe('A4');
    expect(midiName(61)).toBe('C#4');
    expect(midiName(21)).toBe('A0');
    expect(hzToMidi(440)).toBe(69);
    expect(midiToHz(81)).toBeCloseTo(880, 9);
    expect(describePitch(446)).toEqual({ midi: 69, note: 'A4', cents: 23.4 });
    expect(describePitch(261.63).note).toBe('C4');
  });
});

describe('configuration', () => {
  it('picks a 2048-sample window and 512 hop at 44.1 and 48 kHz, scaled at other rates', () => {
    expect(preset('config_default', 44_100)).toMatchObject({ windowSize: 2048, hopSize: 512 });
    expect(preset('config_default', 48_000)).toMatchObject({ windowSize: 2048, hopSize: 512 });
    expect(preset('config_default', 96_000)).toMatchObject({ windowSize: 4096, hopSize: 1024 });
    expect(preset('config_default', 8_000)).toMatchObject({ windowSize: 512, hopSize: 128 });
    expect(preset('config_default', 8_000).pitch.maxHz).toBe(2000);
  });

  it('refuses bad sizes and rates up front with a message naming the problem', () => {
    expect(() => preset('config_default', 7_999)).toThrow(/sample rate must be an integer from 8000 to 96000/);
    expect(() => preset('config_default', 96_001)).toThrow(DspConfigError);
    expect(() => preset('config_default', 44_100, { hopSize: 4096 })).toThrow(/hop size 4096 is larger than window size 2048/);
    expect(() => preset('config_default', 44_100, { windowSize: 1000 })).toThrow(/power of two/);
    expect(() => preset('config_default', 44_100, { windowSize: 1024 })).toThrow(/raise minHz or the window/);
    expect(() => preset('config_default', 44_100, { pitch: { maxHz: 20_000 } })).toThrow(/at least 4 samples per period/);
    const ok = preset('config_default', 44_100);
    expect(() => validateConfig({ ...ok, onset: { ...ok.onset, lag: 0 } })).toThrow(/lag/);
    expect(() => new AnalysisPipeline(kiss, { ...ok, hopSize: 3000 })).toThrow(DspConfigError);
  });
});

describe('the shared spectrum', () => {
  // Checked against direct sums, not against stored values: the fast paths
  // (the cosine transform, the Hann spectrum from the padded grid) must give
  // what the definitions give. 8 kHz keeps bins past the cosine transform's
  // midpoint, 22.05 kHz (the rate 44.1 kHz is analysed at) does not.
  for (const [rate, size] of [[8_000, 512], [22_050, 1024], [48_000, 2048]] as const) {
    it(`gives the band-limited autocorrelation and the Hann spectrum of the definitions at ${rate} Hz`, () => {
      const s = new SharedSpectrum(kiss, size, rate);
      const x = harmonicTone(rate, 220, size / rate, 6, 0.5);
      const noise = seededNoise(size, 5, 0.05);
      for (let i = 0; i < size; i++) x[i] += noise[i] + 0.1;
      s.analyze(x);
      // acf (cosine transform, float32) against acfAt (a double-precision sum over the kept bins).
      let worst = 0;
      for (let i = 0; i < s.acfLength; i++) worst = Math.max(worst, Math.abs(s.acf[i] * s.acfScale - s.acfAt(i * s.decimation)));
      expect(worst).toBeLessThan(2e-5);
      // power against the Hann-windowed DFT of the mean-removed window.
      let mean = 0;
      for (let i = 0; i < size; i++) mean += x[i];
      mean /= size;
      let peak = 0;
      for (const v of s.power) peak = Math.max(peak, v);
      for (let m = 0; m <= size / 2; m += 7) {
        let re = 0;
        let im = 0;
        for (let n = 0; n < size; n++) {
          const v = (x[n] - mean) * (0.5 - 0.5 * Math.cos((2 * Math.PI * n) / size));
          re += v * Math.cos((2 * Math.PI * m * n) / size);
          im -= v * Math.sin((2 * Math.PI * m * n) / size);
        }
        const direct = (re * re + im * im) / ((size / 4) * (size / 4));
        expect(Math.abs(s.power[m] - direct), `bin ${m}`).toBeLessThan(1e-5 * peak);
      }
      s.dispose();
    });
  }
});

describe('pitch', () => {
  it('finds sines from 40 Hz to 2 kHz within 3 cents at every supported rate', () => {
    for (const rate of [8_000, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000]) {
      for (const hz of [40, 65.41, 110, 261.63, 440, 987.77, 1500, 2000]) {
        if (hz > rate / 4) continue;
        const c = analyse(harmonicTone(rate, hz, 0.4, 1, 0.5), rate);
        const mid = inside(c, 0, 0.4, 0.08);
        expect(mid.length, `${hz} Hz at ${rate}`).toBeGreaterThan(3);
        for (const f of mid) {
          expect(f.voiced, `${hz} Hz at ${rate} voiced`).toBe(true);
          expect(Math.abs(1200 * Math.log2(f.hz / hz)), `${hz} Hz at ${rate}: ${f.hz}`).toBeLessThan(3);
        }
      }
    }
  });

  it('names the fundamental of harmonic tones, also with a weak or missing fundamental', () => {
    const rate = 44_100;
    for (const midi of [36, 45, 57, 64, 72, 84, 96]) {
      const hz = midiToHz(midi);
      const n = Math.round(rate / 2 / hz) - 1;
      const x = new Float32Array(Math.round(rate * 0.4));
      for (let i = 0; i < x.length; i++) {
        let v = 0;
        // Harmonics 2..min(n,12) strong, the fundamental at a tenth.
        for (let h = 1; h <= Math.min(n, 12); h++) v += (h === 1 ? 0.1 : 1 / h) * Math.sin((2 * Math.PI * hz * h * i) / rate + h);
        x[i] = 0.3 * v;
      }
      const mid = inside(analyse(x, rate), 0, 0.4, 0.08);
      for (const f of mid) {
        expect(f.voiced).toBe(true);
        expect(describePitch(f.hz).note, `MIDI ${midi}`).toBe(midiName(midi));
      }
    }
  });

  it('reads a tone in noise at 10 dB SNR and keeps the right octave', () => {
    const rate = 48_000;
    const x = harmonicTone(rate, 196, 0.6, 8, 0.3);
    let p = 0;
    for (const v of x) p += v * v;
    const noise = seededNoise(x.length, 5, Math.sqrt((3 * p) / x.length / 10));
    for (let i = 0; i < x.length; i++) x[i] += noise[i];
    const mid = inside(analyse(x, rate), 0, 0.6, 0.08);
    const right = mid.filter((f) => f.voiced && Math.abs(hzToMidi(f.hz) - hzToMidi(196)) < 0.5).length;
    expect(right / mid.length).toBeGreaterThan(0.95);
  });

  it('calls silence and white noise unvoiced', () => {
    const silent = analyse(new Float32Array(44_100), 44_100);
    expect(silent.frames.every((f) => !f.voiced && f.rms === -120 && f.velocity === 0)).toBe(true);
    for (const amp of [0.001, 0.05, 0.5]) {
      const c = analyse(seededNoise(44_100, 9, amp), 44_100);
      const voiced = c.frames.filter((f) => f.voiced).length;
      expect(voiced / c.frames.length, `noise at ${amp}`).toBeLessThan(0.02);
    }
  });

  it('keeps a note voiced after a single wild sample (a click or a glitch 80 dB over the note)', () => {
    // Regression: the window holding the sample read ~+63 dB; the note's peak
    // level was taken from it when the pitch came back, so the note counted
    // as a release tail 30 dB under its "peak" and stayed unvoiced.
    for (const [amplitude, spike] of [[0.3, 1e5], [0.3, -1e3], [0.003, 1]]) {
      const x = harmonicTone(44_100, 220, 3, 3, amplitude);
      x[44_100] = spike;
      const c = analyse(x, 44_100);
      // The windows that hold the sample may lose the pitch; none after them.
      const after = inside(c, 1.1, 3);
      expect(after.length).toBeGreaterThan(150);
      expect(after.filter((f) => !f.voiced).length, `tone ${amplitude}, sample ${spike}`).toBe(0);
      expect(after.every((f) => Math.abs(f.hz - 220) < 1)).toBe(true);
    }
  });

  it('lets a standalone PitchDetector process windows it is given', () => {
    const d = new PitchDetector(kiss, 44_100);
    const x = harmonicTone(44_100, 330, 0.2, 3, 0.5);
    const r = d.process(x.subarray(1000, 1000 + d.windowSize));
    expect(r.voiced).toBe(true);
    expect(r.hz).toBeCloseTo(330, 0);
    expect(() => d.process(new Float32Array(100))).toThrow(/expected a window of 2048/);
    d.dispose();
    expect(() => d.process(x.subarray(0, 2048))).toThrow(/after dispose/);
  });
});

describe('onsets', () => {
  it('times every click of a click track within 20 ms and finds nothing else', () => {
    for (const rate of [16_000, 22_050, 44_100, 48_000, 96_000]) {
      const x = seededNoise(Math.round(rate * 2.2), 1, 0.002);
      const times = [0.2, 0.45, 0.61, 0.8, 1.07, 1.3, 1.62, 1.75, 2.0];
      for (const t of times) {
        const at = Math.round(t * rate);
        const burst = seededNoise(Math.round(rate * 0.01), at, 0.8);
        for (let i = 0; i < burst.length; i++) x[at + i] += burst[i] * Math.exp(-i / (rate * 0.002));
      }
      const c = analyse(x, rate, 777);
      expect(c.onsets.length, `clicks at ${rate}`).toBe(times.length);
      c.onsets.forEach((o, i) => expect(Math.abs(o - times[i]), `click ${i} at ${rate}: ${o}`).toBeLessThan(0.02));
    }
  });

  it('times the onsets of tones that start from silence and from another tone', () => {
    const rate = 44_100;
    const x = new Float32Array(rate * 2);
    const starts = [0.3, 0.8, 1.3];
    x.set(harmonicTone(rate, 220, 0.4, 6, 0.3, 0.002), Math.round(0.3 * rate));
    // Legato: the second tone begins as the first ends.
    x.set(harmonicTone(rate, 330, 0.5, 6, 0.3, 0.002), Math.round(0.8 * rate));
    x.set(harmonicTone(rate, 262, 0.5, 6, 0.3, 0.002), Math.round(1.3 * rate));
    const c = analyse(x, rate);
    expect(c.onsets.length).toBe(3);
    c.onsets.forEach((o, i) => expect(Math.abs(o - starts[i])).toBeLessThan(0.02));
  });

  it('finds no onsets in steady noise, even when it starts loud', () => {
    for (const amp of [0.01, 0.3]) expect(analyse(seededNoise(44_100 * 3, 4, amp), 44_100).onsets).toEqual([]);
  });

  it('places onsets at their stream sample whatever the chunk size', () => {
    const x = seededNoise(44_100, 2, 0.001);
    for (const t of CLICK_TIMES) {
      const at = Math.round(t * 44_100);
      for (let i = 0; i < 200; i++) x[at + i] += 0.5 * Math.exp(-i / 60) * (i % 2 ? 1 : -1);
    }
    const ref = analyse(x, 44_100, 44_100);
    for (const chunk of [1, 17, 512, 4000]) {
      const c = analyse(x, 44_100, chunk);
      expect(c.onsets, `chunk ${chunk}`).toEqual(ref.onsets);
      expect(c.frames, `chunk ${chunk}`).toEqual(ref.frames);
    }
  });
});

describe('dynamics', () => {
  it('reads a full-scale sine as -3 dB RMS, 0 dB peak, velocity 127', () => {
    // 937.5 Hz: a whole number of periods per 512-sample hop.
    const mid = inside(analyse(harmonicTone(48_000, 937.5, 0.3, 1, 1), 48_000), 0, 0.3);
    for (const f of mid) {
      expect(f.rms).toBeCloseTo(-3.01, 1);
      expect(f.peak).toBeCloseTo(0, 1);
      expect(f.velocity).toBe(127);
    }
  });

  it('maps level to velocity as 40·log10(v/127) dB and silence to 0', () => {
    expect(velocityFromRmsDb(-3.0103)).toBe(127);
    expect(velocityFromRmsDb(-43.0103)).toBe(13);
    expect(velocityFromRmsDb(-120)).toBe(0);
    const mid = inside(analyse(harmonicTone(44_100, (44_100 / 512) * 6, 0.3, 1, 0.1), 44_100), 0, 0.3);
    for (const f of mid) {
      expect(f.rms).toBeCloseTo(-23.01, 1);
      expect(f.velocity).toBe(velocityFromRmsDb(f.rms));
    }
  });
});

describe('the pipeline lifecycle', () => {
  it('produces frame k centred on sample k·hop, and flush() covers the last sample', () => {
    const p = AnalysisPipeline.fromPreset(kiss, 'config_default', 44_100);
    const seen: number[] = [];
    p.push(new Float32Array(5000), (f) => seen.push(f.sample));
    expect(seen).toEqual([0, 512, 1024, 1536, 2048, 2560, 3072, 3584]);
    p.flush((f) => seen.push(f.sample));
    expect(seen.at(-1)).toBe(4608);
    expect(p.frames).toBe(10);
    p.dispose();
    expect(() => p.push(new Float32Array(10))).toThrow(/after dispose/);
  });

  it('processes one hop at a time, aubio-style, and reuses its result object', () => {
    const p = AnalysisPipeline.fromPreset(kiss, 'config_default', 44_100);
    const x = harmonicTone(44_100, 440, 0.5, 3, 0.5);
    const frames = [];
    for (let i = 0; i + 512 <= x.length; i += 512) frames.push(p.process(x.subarray(i, i + 512)));
    expect(frames[0]).toBeNull();
    expect(frames[1]).toBe(p.frame);
    expect(frames[2]).toBe(p.frame);
    expect(() => p.process(new Float32Array(100))).toThrow(/takes 512 samples/);
    p.dispose();
  });

  it('restarts cleanly after reset()', () => {
    const p = AnalysisPipeline.fromPreset(kiss, 'config_default', 22_050);
    const x = harmonicTone(22_050, 300, 0.3, 2, 0.5);
    const a: number[] = [];
    const b: number[] = [];
    p.push(x, (f) => a.push(f.pitch.hz));
    p.reset();
    p.push(x, (f) => b.push(f.pitch.hz));
    expect(b).toEqual(a);
    p.dispose();
  });
});

describe('the offline document', () => {
  it('has one frame per hop with f0 null when unvoiced, and onsets in seconds', () => {
    const rate = 22_050;
    const x = new Float32Array(rate);
    x.set(harmonicTone(rate, 440, 0.4, 4, 0.4, 0.03), Math.round(0.4 * rate));
    const doc = analyzeSamples(kiss, x, rate);
    expect(doc.sample_rate).toBe(rate);
    expect(doc.hop_s).toBeCloseTo(256 / rate, 9);
    expect(doc.frames[0]).toEqual({ t: 0, f0: null, confidence: 0, rms_db: -120 });
    expect(doc.frames.length).toBe(Math.ceil(rate / 256));
    expect(doc.onsets.length).toBe(1);
    expect(Math.abs(doc.onsets[0] - 0.4)).toBeLessThan(0.02);
    const voiced = doc.frames.filter((f) => f.f0 !== null);
    expect(voiced.length).toBeGreaterThan(25);
    for (const f of voiced) expect(Math.abs(1200 * Math.log2(f.f0! / 440))).toBeLessThan(20);
    for (const f of voiced.filter((f) => f.t > 0.45 && f.t < 0.75)) expect(Math.abs(f.f0! - 440)).toBeLessThan(0.5);
  });

  it('resamples files outside 8–96 kHz', () => {
    for (const rate of [4_000, 192_000]) {
      const doc = analyzeSamples(kiss, harmonicTone(rate, 330, 0.4, 1, 0.5), rate);
      expect(doc.sample_rate).toBe(rate);
      const mid = doc.frames.filter((f) => f.t > 0.08 && f.t < 0.32);
      for (const f of mid) expect(Math.abs(1200 * Math.log2(f.f0! / 330))).toBeLessThan(5);
    }
    expect(() => analyzeSamples(kiss, new Float32Array(100), 500)).toThrow(/too low/);
  });

  it('resamples without changing frequency', () => {
    const y = resample(harmonicTone(48_000, 1000, 0.1, 1, 1), 48_000, 16_000);
    expect(y.length).toBe(1600);
    let zc = 0;
    for (let i = 201; i < 1400; i++) if (y[i - 1] < 0 && y[i] >= 0) zc++;
    expect(zc).toBeGreaterThanOrEqual(74);
    expect(zc).toBeLessThanOrEqual(75);
  });
});

describe('the shared cases', () => {
  it('match the golden values that workerd is held to as well', () => {
    expect(compareCases(sharedCases(kiss), golden as Record<string, CaseSummary>)).toEqual([]);
  });
});
