// The DSP benchmark's data set, rendered at run time into bench/out/dsp/:
// monophonic phrases on several General MIDI instruments (FluidSynth,
// FluidR3 GM), MIDI 36–96 overall, each in four conditions: clean, white
// noise at 20 dB and 10 dB SNR (relative to the power while notes sound),
// and reverb (sox). The MIDI is written here, so the ground truth is exact:
// f0 of the sounding note, note-on times for onsets.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderNotes, type MidiNote } from '../../tests/fixtures/render.ts';
import { decodeWav, encodeWav } from '../../wasm/wav.ts';
import { midiToHz } from '../../wasm/dsp/notes.ts';

export const RATE = 44_100;

export interface Instrument {
  name: string;
  program: number;
  low: number;
  high: number;
}

export const INSTRUMENTS: Instrument[] = [
  { name: 'Acoustic Grand Piano', program: 0, low: 36, high: 96 },
  { name: 'Electric Piano 1', program: 4, low: 40, high: 84 },
  { name: 'Acoustic Guitar (nylon)', program: 24, low: 40, high: 76 },
  { name: 'Electric Bass (finger)', program: 33, low: 36, high: 60 },
  { name: 'Violin', program: 40, low: 55, high: 96 },
  { name: 'Cello', program: 42, low: 36, high: 72 },
  { name: 'Trumpet', program: 56, low: 55, high: 84 },
  { name: 'Alto Sax', program: 65, low: 49, high: 81 },
  { name: 'Clarinet', program: 71, low: 50, high: 89 },
  { name: 'Flute', program: 73, low: 60, high: 96 },
];

export const CONDITIONS = ['clean', 'snr20', 'snr10', 'reverb'] as const;
export type Condition = (typeof CONDITIONS)[number];

export interface Piece {
  instrument: Instrument;
  notes: MidiNote[];
  /** Seconds of audio. */
  duration: number;
  files: Record<Condition, string>;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** 20 notes: durations 0.3–0.9 s; 40% legato (the next note starts as this one ends), else a 0.1–0.4 s rest. */
export function phrase(inst: Instrument, seed: number, count = 20): MidiNote[] {
  const rand = rng(seed);
  const notes: MidiNote[] = [];
  let t = 0.3;
  for (let i = 0; i < count; i++) {
    const note = inst.low + Math.floor(rand() * (inst.high - inst.low + 1));
    const duration = 0.3 + rand() * 0.6;
    notes.push({ note, start: Math.round(t * 1000) / 1000, duration: Math.round(duration * 1000) / 1000, velocity: 60 + Math.floor(rand() * 60) });
    t += duration + (rand() < 0.4 ? 0 : 0.1 + rand() * 0.3);
  }
  return notes;
}

function gaussian(rand: () => number): number {
  const u = rand() || 1e-12;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Mean power of the samples while a note sounds (key down). */
export function activePower(x: Float32Array, notes: MidiNote[], rate = RATE): number {
  let sum = 0;
  let n = 0;
  for (const note of notes) {
    const a = Math.round(note.start * rate);
    const b = Math.min(x.length, Math.round((note.start + note.duration) * rate));
    for (let i = a; i < b; i++) sum += x[i] * x[i];
    n += Math.max(0, b - a);
  }
  return n ? sum / n : 0;
}

export function addNoise(x: Float32Array, notes: MidiNote[], snrDb: number, seed: number): Float32Array {
  const sd = Math.sqrt(activePower(x, notes) / 10 ** (snrDb / 10));
  const rand = rng(seed);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] + sd * gaussian(rand);
  return y;
}

export function truthF0(notes: MidiNote[], t: number, margin = 0.03): number | null | undefined {
  for (const n of notes) {
    if (Math.abs(t - n.start) < margin || Math.abs(t - (n.start + n.duration)) < margin) return undefined;
  }
  for (const n of notes) if (t >= n.start && t < n.start + n.duration) return midiToHz(n.note);
  return null;
}

/** Renders (or reuses) every piece in every condition; returns the file list. */
export function buildDataset(dir: string, log: (s: string) => void, seed = 1000): Piece[] {
  mkdirSync(dir, { recursive: true });
  const pieces: Piece[] = [];
  for (const [i, inst] of INSTRUMENTS.entries()) {
    const notes = phrase(inst, seed + i);
    const end = Math.max(...notes.map((n) => n.start + n.duration)) + 1;
    const base = join(dir, `${String(i).padStart(2, '0')}-p${inst.program}`);
    const files = Object.fromEntries(CONDITIONS.map((c) => [c, `${base}-${c}.wav`])) as Record<Condition, string>;
    const spec = JSON.stringify({ notes, program: inst.program, rate: RATE, v: 1 });
    const specFile = `${base}.json`;
    const cached = existsSync(specFile) && readFileSync(specFile, 'utf8') === spec && CONDITIONS.every((c) => existsSync(files[c]));
    if (!cached) {
      log(`rendering ${inst.name}`);
      const clean = renderNotes(notes, inst.program, RATE, 0.5).subarray(0, Math.round(end * RATE));
      writeFileSync(files.clean, encodeWav(clean, RATE, { bitDepth: '32f' }));
      writeFileSync(files.snr20, encodeWav(addNoise(clean, notes, 20, 20 + i), RATE, { bitDepth: '32f' }));
      writeFileSync(files.snr10, encodeWav(addNoise(clean, notes, 10, 10 + i), RATE, { bitDepth: '32f' }));
      // A medium hall: 50% reverberance, 50% damping, 100% room scale, wet and dry mixed.
      execFileSync('sox', [files.clean, '-b', '32', '-e', 'floating-point', files.reverb, 'reverb', '50', '50', '100', 'remix', '1', 'trim', '0', String(end)], { stdio: 'ignore' });
      writeFileSync(specFile, spec);
    }
    const duration = decodeWav(readFileSync(files.clean)).durationS;
    pieces.push({ instrument: inst, notes, duration, files });
  }
  return pieces;
}
