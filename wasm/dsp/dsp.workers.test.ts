import { describe, expect, it } from 'vitest';
import { loadKissFFT } from '../kissfft-workerd.ts';
import { compareCases, sharedCases, type CaseSummary } from './dsp.shared-cases.ts';
import golden from './dsp.golden.json';
import { analyzeSamples } from './offline.ts';
import { harmonicTone } from './dsp.shared-cases.ts';

describe('the DSP inside workerd', () => {
  it('gives the same pitch, onsets and dynamics as Node on every shared case', async () => {
    const got = sharedCases(await loadKissFFT());
    expect(compareCases(got, golden as Record<string, CaseSummary>)).toEqual([]);
  });

  it('analyses a whole signal into the offline document', async () => {
    const doc = analyzeSamples(await loadKissFFT(), harmonicTone(44_100, 220, 0.5, 5, 0.4, 0.01), 44_100);
    expect(doc.sample_rate).toBe(44_100);
    const voiced = doc.frames.filter((f) => f.f0 !== null);
    expect(voiced.length).toBeGreaterThan(30);
    for (const f of voiced) expect(Math.abs(f.f0! - 220)).toBeLessThan(1);
  });
});
