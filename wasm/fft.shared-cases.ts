// Cases run both in Node (fft.test.ts) and inside workerd (fft.workers.test.ts),
// so the two loaders are held to the same answers.
import type { KissFFT } from './kissfft.ts';
import { RealFFT, RealIFFT } from './fft.ts';

export function sineSpectrumPeak(kiss: KissFFT): { peakBin: number; peakMag: number; dc: number } {
  const fft = new RealFFT(kiss, 1024);
  const x = fft.input;
  for (let i = 0; i < 1024; i++) x[i] = Math.sin((2 * Math.PI * 64 * i) / 1024) + 0.25;
  const s = fft.forward();
  let peakBin = 0;
  let peakMag = 0;
  for (let k = 1; k < fft.bins; k++) {
    const m = Math.hypot(s[2 * k], s[2 * k + 1]);
    if (m > peakMag) [peakBin, peakMag] = [k, m];
  }
  const dc = s[0];
  fft.dispose();
  return { peakBin, peakMag, dc };
}

export function roundTripError(kiss: KissFFT): number {
  const fft = new RealFFT(kiss, 512);
  const ifft = new RealIFFT(kiss, 512);
  const x = new Float32Array(512);
  for (let i = 0; i < 512; i++) x[i] = Math.sin(i * 0.37) * Math.cos(i * 0.011);
  fft.input.set(x);
  ifft.spectrum.set(fft.forward());
  const y = ifft.inverse();
  let err = 0;
  for (let i = 0; i < 512; i++) err = Math.max(err, Math.abs(y[i] / 512 - x[i]));
  fft.dispose();
  ifft.dispose();
  return err;
}

/**
 * A plan made before the WASM heap grows (growth detaches the old buffer)
 * still reads and writes the live heap after it: the same spectrum before
 * and after, and its views are on the new buffer. Returns the largest
 * difference between the two spectra (0 expected) and whether the heap grew.
 */
export function spectrumAcrossHeapGrowth(kiss: KissFFT): { maxDiff: number; grew: boolean; onLiveHeap: boolean } {
  const fft = new RealFFT(kiss, 256);
  const fill = () => {
    const x = fft.input;
    for (let i = 0; i < 256; i++) x[i] = Math.sin(i * 0.21) + 0.1;
  };
  fill();
  const before = Float32Array.from(fft.forward());
  const oldBuffer = kiss.memory.buffer;
  // More than the heap holds now: the allocator has to grow the memory.
  const big = kiss.malloc(oldBuffer.byteLength + (1 << 20));
  const grew = kiss.memory.buffer !== oldBuffer;
  fill();
  const after = fft.forward();
  let maxDiff = 0;
  for (let i = 0; i < before.length; i++) maxDiff = Math.max(maxDiff, Math.abs(after[i] - before[i]));
  const onLiveHeap = after.buffer === kiss.memory.buffer && fft.input.buffer === kiss.memory.buffer;
  kiss.free(big);
  fft.dispose();
  return { maxDiff, grew, onLiveHeap };
}
