import { describe, expect, it } from 'vitest';
import { loadKissFFT } from './kissfft-node.ts';
import { roundTripError, sineSpectrumPeak, spectrumAcrossHeapGrowth } from './fft.shared-cases.ts';
import { RealFFT } from './fft.ts';

describe('KissFFT in Node', () => {
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
  it('starts a plan with a zeroed input, whatever an earlier plan left in the same memory', async () => {
    const kiss = await loadKissFFT();
    const first = new RealFFT(kiss, 2048);
    first.input.fill(0.75);
    first.dispose();
    const second = new RealFFT(kiss, 2048);
    expect(second.input.every((v) => v === 0)).toBe(true);
    second.dispose();
  });
});
