import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { decodeWav, encodeWav, readWavHeader, WavError } from './wav.ts';
import { readWavFile, WavFileError } from '../agent/wav.ts';
import { CliError } from '../agent/cli-error.ts';

const { WaveFile } = wavefile;

function ramp(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.05) * 0.8;
  return x;
}

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WavError);
    expect((e as WavError).code).toBe(code);
    return (e as WavError).message;
  }
  throw new Error('expected a WavError');
}

describe('decodeWav', () => {
  for (const depth of [16, 24, 32, '32f'] as const) {
    it(`round-trips ${depth}-bit mono within the quantisation step`, () => {
      const x = ramp(1000);
      const wav = decodeWav(encodeWav(x, 44_100, { bitDepth: depth }));
      expect(wav.sampleRate).toBe(44_100);
      expect(wav.channels).toBe(1);
      expect(wav.frames).toBe(1000);
      expect(wav.encoding).toBe(depth === '32f' ? 'float' : 'pcm');
      const tol = depth === 16 ? 1 / 32768 : 1e-6;
      for (let i = 0; i < x.length; i++) expect(Math.abs(wav.samples[i] - x[i])).toBeLessThanOrEqual(tol);
    });
  }

  it('downmixes stereo to the mean of its channels', () => {
    const wf = new WaveFile();
    wf.fromScratch(2, 8000, '16', [new Int16Array([1000, 2000, -3000]), new Int16Array([3000, 0, -1000])]);
    const wav = decodeWav(wf.toBuffer());
    expect(wav.channels).toBe(2);
    expect(Array.from(wav.samples)).toEqual([2000 / 32768, 1000 / 32768, -2000 / 32768].map(Math.fround));
  });

  it('reads files written by wavefile: 8-bit unsigned, 24-bit, 64-bit float', () => {
    const w8 = new WaveFile();
    w8.fromScratch(1, 22_050, '8', new Uint8Array([128, 255, 0]));
    expect(Array.from(decodeWav(w8.toBuffer()).samples)).toEqual([0, 127 / 128, -1]);
    const w24 = new WaveFile();
    w24.fromScratch(1, 96_000, '24', [-8388608, 4194304, 8388607]);
    expect(Array.from(decodeWav(w24.toBuffer()).samples)).toEqual([-1, 0.5, Math.fround(8388607 / 8388608)]);
    const w64 = new WaveFile();
    w64.fromScratch(1, 48_000, '64', [0.25, -0.5]);
    const d = decodeWav(w64.toBuffer());
    expect(d.encoding).toBe('float');
    expect(Array.from(d.samples)).toEqual([0.25, -0.5]);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE float as float, not as integers', () => {
    const bytes = encodeWav(new Float32Array([0.5, -0.25]), 48_000, { bitDepth: '32f' });
    // Rewrite the fmt chunk as extensible (40 bytes) with the float sub-format GUID.
    const out = new Uint8Array(bytes.length + 24);
    const v = new DataView(out.buffer);
    out.set(bytes.subarray(0, 20), 0);
    v.setUint32(4, out.length - 8, true);
    v.setUint32(16, 40, true);
    v.setUint16(20, 0xfffe, true);
    out.set(bytes.subarray(22, 36), 22);
    v.setUint16(36, 22, true); // cbSize
    v.setUint16(38, 32, true); // valid bits
    v.setUint32(40, 4, true); // channel mask
    v.setUint32(44, 3, true); // sub-format: IEEE float GUID, first field
    out.set([0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 48);
    out.set(bytes.subarray(36), 60);
    const d = decodeWav(out);
    expect(d.encoding).toBe('float');
    expect(Array.from(d.samples)).toEqual([0.5, -0.25]);
  });

  it('accepts an ArrayBuffer and a Buffer slice at an offset', () => {
    const bytes = encodeWav(ramp(10), 8000);
    expect(decodeWav(bytes.buffer).frames).toBe(10);
    const padded = Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3);
    expect(decodeWav(padded).frames).toBe(10);
  });

  it('refuses what is not a WAV file with not_wav', () => {
    expectCode(() => decodeWav(new Uint8Array(0)), 'not_wav');
    expectCode(() => decodeWav(new TextEncoder().encode('ID3\u0003 this is an mp3, honest')), 'not_wav');
    const noData = encodeWav(ramp(4), 8000).subarray(0, 36);
    expectCode(() => decodeWav(noData), 'not_wav');
  });

  it('refuses compressed and odd formats with unsupported_format and names them', () => {
    const mu = new WaveFile();
    mu.fromScratch(1, 8000, '16', [0, 100, -100, 2000]);
    mu.toMuLaw();
    expect(expectCode(() => decodeWav(mu.toBuffer()), 'unsupported_format')).toMatch(/mu-law/);
    const adpcm = new WaveFile();
    adpcm.fromScratch(1, 8000, '16', new Array(1024).fill(0));
    adpcm.toIMAADPCM();
    expect(expectCode(() => decodeWav(adpcm.toBuffer()), 'unsupported_format')).toMatch(/IMA ADPCM/);
    const w12 = encodeWav(ramp(4), 8000);
    new DataView(w12.buffer).setUint16(34, 12, true);
    expect(expectCode(() => decodeWav(w12), 'unsupported_format')).toMatch(/12-bit PCM/);
  });

  it('refuses a zero sample rate and an empty data chunk', () => {
    const bytes = encodeWav(ramp(4), 8000);
    new DataView(bytes.buffer).setUint32(24, 0, true);
    expectCode(() => decodeWav(bytes), 'unsupported_rate');
    expectCode(() => decodeWav(encodeWav(new Float32Array(0), 8000)), 'empty');
  });

  it('reads the header alone without converting samples', () => {
    const h = readWavHeader(encodeWav(ramp(100), 32_000, { bitDepth: 24, channels: 2 }));
    expect(h).toMatchObject({ sampleRate: 32_000, channels: 2, bitDepth: 24, encoding: 'pcm' });
  });
});

describe('readWavFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roomtone-wav-'));
  it('reads a file from disk', async () => {
    const path = join(dir, 'a.wav');
    writeFileSync(path, encodeWav(ramp(500), 48_000, { channels: 2 }));
    const wav = await readWavFile(path);
    expect(wav.frames).toBe(500);
    expect(wav.channels).toBe(2);
  });
  it('names the file in format errors and says when it is missing', async () => {
    const path = join(dir, 'b.wav');
    writeFileSync(path, 'hello');
    await expect(readWavFile(path)).rejects.toBeInstanceOf(WavFileError);
    await expect(readWavFile(path)).rejects.toThrow(/b\.wav: not a WAV file/);
    await expect(readWavFile(join(dir, 'nope.wav'))).rejects.toBeInstanceOf(CliError);
    await expect(readWavFile(join(dir, 'nope.wav'))).rejects.toThrow(/no such file/);
    await expect(readWavFile(dir)).rejects.toThrow(/not a file/);
  });
});
