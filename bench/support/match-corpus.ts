// The identification benchmark's music: rendered multi-instrument MIDI
// (always available: fluidsynth + FluidR3 GM) and, when Debian's
// hedgewars-data is installed, the game's Ogg Vorbis soundtracks (real
// recordings). Audio is decoded to mono 22050 Hz and cached between runs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { decodeWav, encodeWav } from '../../wasm/wav.ts';
import { compose } from './match-midi.ts';

export const RATE = 22050;
export const CACHE = join(tmpdir(), 'roomtone-bench-match');
const SOUNDFONT = '/usr/share/sounds/sf2/FluidR3_GM.sf2';
const HEDGEWARS = '/usr/share/games/hedgewars/Data/Music';

export interface CorpusTrack {
  name: string;
  kind: 'midi' | 'recording';
  samples: Float32Array;
  /** The file the audio came from (cached WAV or the original Ogg). */
  path: string;
}

export function hasTool(tool: string): boolean {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    try {
      execFileSync(tool, ['-version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }
}

function cachedWav(name: string, make: (wavPath: string) => void): Float32Array {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `${name}.wav`);
  if (!existsSync(path)) make(path);
  const wav = decodeWav(readFileSync(path));
  if (wav.sampleRate !== RATE) throw new Error(`${path}: expected ${RATE} Hz`);
  return wav.samples;
}

/** A rendered MIDI piece of about `seconds` seconds. */
export function midiTrack(seed: number, seconds: number): CorpusTrack {
  const name = `midi-${seed}-${seconds}`;
  const samples = cachedWav(name, (wavPath) => {
    const piece = compose(seed, seconds);
    const mid = join(CACHE, `${name}.mid`);
    const stereo = join(CACHE, `${name}.stereo.wav`);
    writeFileSync(mid, piece.midi);
    execFileSync('fluidsynth', ['-ni', '-q', '-F', stereo, '-r', String(RATE), '-g', '0.35', SOUNDFONT, mid], { stdio: 'ignore' });
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', stereo, '-ac', '1', '-ar', String(RATE), '-c:a', 'pcm_f32le', wavPath]);
  });
  return { name, kind: 'midi', samples, path: join(CACHE, `${name}.wav`) };
}

/** The hedgewars soundtracks, if installed, sorted by name. */
export function recordings(): CorpusTrack[] {
  if (!existsSync(HEDGEWARS)) return [];
  return readdirSync(HEDGEWARS)
    .filter((f) => f.endsWith('.ogg'))
    .sort()
    .map((f) => {
      const name = `hw-${basename(f, '.ogg')}`;
      const samples = cachedWav(name, (wavPath) => {
        execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', join(HEDGEWARS, f), '-ac', '1', '-ar', String(RATE), '-c:a', 'pcm_f32le', wavPath]);
      });
      return { name, kind: 'recording' as const, samples, path: join(HEDGEWARS, f) };
    });
}

/** Encodes and decodes through a lossy codec with ffmpeg (e.g. libmp3lame at 32k). */
export function lossy(samples: Float32Array, codec: 'libmp3lame' | 'libvorbis' | 'libopus', bitrate: string, tag: string): Float32Array {
  mkdirSync(join(CACHE, 'lossy'), { recursive: true });
  const ext = codec === 'libmp3lame' ? 'mp3' : codec === 'libopus' ? 'opus' : 'ogg';
  const src = join(CACHE, 'lossy', `${tag}.wav`);
  const enc = join(CACHE, 'lossy', `${tag}.${ext}`);
  writeFileSync(src, encodeWav(samples, RATE, { bitDepth: '32f' }));
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', src, '-c:a', codec, '-b:a', bitrate, enc]);
  // Raw samples rather than a WAV read through wavefile: its garbage was collected by the next query's
  // clock (on other threads, which the process's CPU time counts), making lossy rows look 1.7× as costly.
  const raw = execFileSync('ffmpeg', ['-loglevel', 'error', '-i', enc, '-ac', '1', '-ar', String(RATE), '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}
