// WAV decoding shared by the worker (POST /api/v1/analyze), the CLI
// (agent/wav.ts reads files and calls this) and the tests. Container parsing
// (RIFF/RIFX/RF64 chunks, the fmt chunk and its extension) is wavefile's; the
// sample conversion is ours, one pass straight to a mono Float32Array, because
// wavefile reads WAVE_FORMAT_EXTENSIBLE float as integers and builds a
// Float64Array per channel first.
//
//   import { decodeWav, WavError } from '../wasm/wav.ts';
//   const { sampleRate, channels, samples } = decodeWav(bytes);   // samples: mono, -1..1
//
// Accepted: PCM 8/16/24/32-bit and IEEE float 32/64-bit, plain or extensible,
// any channel count (averaged to mono), any sample rate from 1 Hz to 768 kHz.
// Anything else throws a WavError whose `code` says why.
import * as wavefileNs from 'wavefile';

export type WavErrorCode =
  /** Not a RIFF/RIFX/RF64 WAVE file, or a chunk is missing or cut short. */
  | 'not_wav'
  /** A WAVE file in a sample format we do not decode (ADPCM, mu-law, 12-bit…). */
  | 'unsupported_format'
  /** A sample rate or channel count out of range. */
  | 'unsupported_rate'
  /** A data chunk with no whole sample frame in it. */
  | 'empty';

export class WavError extends Error {
  readonly code: WavErrorCode;
  constructor(code: WavErrorCode, message: string) {
    super(message);
    this.name = 'WavError';
    this.code = code;
  }
}

export interface DecodedWav {
  sampleRate: number;
  /** Channels in the file; `samples` is always their mono average. */
  channels: number;
  /** Bits per stored sample: 8, 16, 24, 32 or 64. */
  bitDepth: number;
  encoding: 'pcm' | 'float';
  /** Sample frames (per channel) in the file. */
  frames: number;
  durationS: number;
  /** Mono downmix scaled to -1..1 (integer PCM: divided by 2^(bits-1)). */
  samples: Float32Array;
}

export const WAV_MIN_RATE = 1;
export const WAV_MAX_RATE = 768_000;
export const WAV_MAX_CHANNELS = 64;

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
const FORMAT_NAMES: Record<number, string> = { 2: 'MS ADPCM', 6: 'A-law', 7: 'mu-law', 17: 'IMA ADPCM', 85: 'MP3', 0x1610: 'AAC' };

interface WaveFileLike {
  container: string;
  format: string;
  fmt: {
    audioFormat: number;
    numChannels: number;
    sampleRate: number;
    blockAlign: number;
    bitsPerSample: number;
    validBitsPerSample?: number;
    subformat?: number[];
  };
  data: { samples: Uint8Array };
  fromBuffer(bytes: Uint8Array, samples?: boolean): void;
}

// Node loads wavefile's CommonJS build (the class under `default`); bundlers
// (wrangler, vitest in workerd) load its ES module (a named export).
const WaveFileClass: new () => WaveFileLike =
  (wavefileNs as unknown as { WaveFile?: new () => WaveFileLike }).WaveFile ??
  (wavefileNs as unknown as { default: { WaveFile: new () => WaveFileLike } }).default.WaveFile;

/** WAV bytes: a Node Buffer, any typed array or DataView, or an ArrayBuffer. */
export type WavInput = ArrayBufferView | ArrayBufferLike;

function asBytes(input: WavInput): Uint8Array {
  if (input instanceof Uint8Array) return input;
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (input instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && input instanceof SharedArrayBuffer)) return new Uint8Array(input);
  throw new WavError('not_wav', 'expected WAV bytes (a Buffer, Uint8Array or ArrayBuffer)');
}

/** The container and format, without converting samples: cheap, for validation. */
export function readWavHeader(input: WavInput): Omit<DecodedWav, 'samples' | 'durationS' | 'frames'> & { blockAlign: number } {
  return parse(asBytes(input), false).header;
}

export function decodeWav(input: WavInput): DecodedWav {
  const { header, wav } = parse(asBytes(input), true);
  const data = wav.data.samples;
  const frames = Math.floor(data.byteLength / header.blockAlign);
  if (frames === 0) throw new WavError('empty', 'the WAV data chunk holds no complete sample frame');
  const samples = new Float32Array(frames);
  const view = new DataView(data.buffer, data.byteOffset, frames * header.blockAlign);
  const little = wav.container !== 'RIFX';
  const bytes = header.bitDepth / 8;
  const ch = header.channels;
  const gain = 1 / ch;
  const stride = header.blockAlign;
  for (let c = 0; c < ch; c++) {
    let off = c * bytes;
    for (let i = 0; i < frames; i++, off += stride) samples[i] += readSample(view, off, header.encoding, header.bitDepth, little) * gain;
  }
  return { ...stripBlockAlign(header), frames, durationS: frames / header.sampleRate, samples };
}

function stripBlockAlign<T extends { blockAlign: number }>(h: T): Omit<T, 'blockAlign'> {
  const { blockAlign: _b, ...rest } = h;
  return rest;
}

function readSample(v: DataView, off: number, enc: 'pcm' | 'float', bits: number, little: boolean): number {
  if (enc === 'float') return bits === 32 ? v.getFloat32(off, little) : v.getFloat64(off, little);
  switch (bits) {
    case 8:
      return (v.getUint8(off) - 128) / 128;
    case 16:
      return v.getInt16(off, little) / 32768;
    case 24: {
      const b0 = v.getUint8(off);
      const b1 = v.getUint8(off + 1);
      const b2 = v.getUint8(off + 2);
      const u = little ? b0 | (b1 << 8) | (b2 << 16) : b2 | (b1 << 8) | (b0 << 16);
      return ((u << 8) >> 8) / 8388608;
    }
    default:
      return v.getInt32(off, little) / 2147483648;
  }
}

function parse(bytes: Uint8Array, withSamples: boolean) {
  if (bytes.byteLength < 12) throw new WavError('not_wav', `not a WAV file: ${bytes.byteLength} bytes is too short for a RIFF header`);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  const wave = String.fromCharCode(bytes[8], bytes[9], bytes[10], bytes[11]);
  if (!['RIFF', 'RIFX', 'RF64'].includes(magic) || wave !== 'WAVE') {
    throw new WavError('not_wav', 'not a WAV file: it does not start with a RIFF/RIFX/RF64 WAVE header');
  }
  const wav = new WaveFileClass();
  try {
    wav.fromBuffer(bytes, withSamples);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new WavError('not_wav', `not a readable WAV file: ${why.replace(/\.$/, '')}`);
  }
  const fmt = wav.fmt;
  let code = fmt.audioFormat;
  if (code === FORMAT_EXTENSIBLE) {
    // The sub-format GUID starts with the plain format code.
    code = fmt.subformat?.[0] ?? 0;
  }
  const bitDepth = fmt.bitsPerSample;
  let encoding: 'pcm' | 'float';
  if (code === FORMAT_PCM && [8, 16, 24, 32].includes(bitDepth)) encoding = 'pcm';
  else if (code === FORMAT_FLOAT && (bitDepth === 32 || bitDepth === 64)) encoding = 'float';
  else {
    const name = code === FORMAT_PCM ? `${bitDepth}-bit PCM` : code === FORMAT_FLOAT ? `${bitDepth}-bit float` : (FORMAT_NAMES[code] ?? `format code ${code}`);
    throw new WavError('unsupported_format', `unsupported WAV sample format: ${name}; use PCM 8/16/24/32-bit or 32/64-bit float`);
  }
  const channels = fmt.numChannels;
  if (!Number.isInteger(channels) || channels < 1 || channels > WAV_MAX_CHANNELS) {
    throw new WavError('unsupported_rate', `unsupported channel count ${channels}; expected 1 to ${WAV_MAX_CHANNELS}`);
  }
  const sampleRate = fmt.sampleRate;
  if (!Number.isInteger(sampleRate) || sampleRate < WAV_MIN_RATE || sampleRate > WAV_MAX_RATE) {
    throw new WavError('unsupported_rate', `unsupported sample rate ${sampleRate} Hz; expected ${WAV_MIN_RATE} to ${WAV_MAX_RATE}`);
  }
  const blockAlign = (bitDepth / 8) * channels;
  if (fmt.blockAlign && fmt.blockAlign !== blockAlign) {
    throw new WavError('not_wav', `inconsistent WAV header: block align ${fmt.blockAlign} for ${channels} × ${bitDepth}-bit samples`);
  }
  return { wav, header: { sampleRate, channels, bitDepth, encoding, blockAlign } };
}

export interface EncodeWavOptions {
  /** 16, 24, 32 (integer PCM) or '32f' (float). Default 16. */
  bitDepth?: 16 | 24 | 32 | '32f';
  /** Write the same signal to this many channels (tests of the downmix). Default 1. */
  channels?: number;
}

/** Writes mono samples (-1..1, clipped for integer formats) as a WAV file. */
export function encodeWav(samples: Float32Array, sampleRate: number, opts: EncodeWavOptions = {}): Uint8Array<ArrayBuffer> {
  const depth = opts.bitDepth ?? 16;
  const channels = opts.channels ?? 1;
  const isFloat = depth === '32f';
  const bits = isFloat ? 32 : depth;
  const bytes = bits / 8;
  const dataBytes = samples.length * bytes * channels;
  const out = new Uint8Array(44 + dataBytes);
  const v = new DataView(out.buffer);
  const ascii = (off: number, s: string) => {
    for (let i = 0; i < s.length; i++) out[off + i] = s.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, isFloat ? FORMAT_FLOAT : FORMAT_PCM, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * bytes * channels, true);
  v.setUint16(32, bytes * channels, true);
  v.setUint16(34, bits, true);
  ascii(36, 'data');
  v.setUint32(40, dataBytes, true);
  let off = 44;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i];
    for (let c = 0; c < channels; c++, off += bytes) {
      if (isFloat) v.setFloat32(off, x, true);
      else {
        const full = 2 ** (bits - 1);
        const q = Math.max(-full, Math.min(full - 1, Math.round(x * full)));
        if (bits === 16) v.setInt16(off, q, true);
        else if (bits === 32) v.setInt32(off, q, true);
        else {
          v.setUint8(off, q & 0xff);
          v.setUint8(off + 1, (q >> 8) & 0xff);
          v.setUint8(off + 2, (q >> 16) & 0xff);
        }
      }
    }
  }
  return out;
}
