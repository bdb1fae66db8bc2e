import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav, WavError } from './wav.ts';

describe('the WAV decoder inside workerd', () => {
  it('decodes 24-bit stereo through the bundled wavefile module', () => {
    const x = new Float32Array([0, 0.5, -0.5, 0.25]);
    const wav = decodeWav(encodeWav(x, 48_000, { bitDepth: 24, channels: 2 }));
    expect(wav.channels).toBe(2);
    expect(Array.from(wav.samples)).toEqual(Array.from(x));
  });
  it('throws typed errors for what it cannot read', () => {
    expect(() => decodeWav(new Uint8Array(40))).toThrow(WavError);
  });
});
