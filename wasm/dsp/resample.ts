// Offline sample-rate conversion for files outside the 8–96 kHz the
// analysis runs at: windowed-sinc interpolation (Blackman window, 16 zero
// crossings, cut-off at the lower Nyquist). Streams never resample: they are
// refused outside 8–96 kHz.

const ZERO_CROSSINGS = 16;

export function resample(input: Float32Array, from: number, to: number): Float32Array {
  if (!(from > 0 && to > 0)) throw new RangeError(`sample rates must be positive, got ${from} -> ${to}`);
  if (from === to) return input.slice();
  const ratio = to / from;
  const outLen = Math.max(1, Math.floor(input.length * ratio));
  const out = new Float32Array(outLen);
  // Cut-off relative to the input rate; below 1 when decimating.
  const cutoff = Math.min(1, ratio) * 0.97;
  const half = Math.ceil(ZERO_CROSSINGS / cutoff);
  for (let j = 0; j < outLen; j++) {
    const center = j / ratio;
    const i0 = Math.floor(center);
    let acc = 0;
    let norm = 0;
    for (let i = i0 - half + 1; i <= i0 + half; i++) {
      const x = (i - center) * cutoff;
      const w = Math.abs(i - center) / half;
      if (w >= 1) continue;
      const win = 0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w);
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const k = sinc * win;
      norm += k;
      if (i >= 0 && i < input.length) acc += input[i] * k;
    }
    out[j] = norm !== 0 ? acc / norm : 0;
  }
  return out;
}
