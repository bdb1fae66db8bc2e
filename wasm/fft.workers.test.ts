import { describe, expect, it } from 'vitest';
import { loadKissFFT } from './kissfft-workerd.ts';
import { roundTripError, sineSpectrumPeak, spectrumAcrossHeapGrowth } from './fft.shared-cases.ts';

describe('KissFFT inside workerd', () => {
  it('finds a sine at its bin and the DC offset', async () => {
    const r = sineSpectrumPeak(await loadKissFFT());
    expect(r.peakBin).toBe(64);
    expect(r.peakMag).toBeCloseTo(512, 0);
    expect(r.dc).toBeCloseTo(256, 0);
  });
  it('round-trips forward and inverse', async () => {
    expect(roundTripError(await loadKissFFT())).toBeLessThan(1e-5);
  });
  it('keeps a plan working when the heap grows under it', async () => {
    expect(spectrumAcrossHeapGrowth(await loadKissFFT())).toEqual({ maxDiff: 0, grew: true, onLiveHeap: true });
  });
});
