// Test audio for the browser tests: music rendered by FluidSynth from notes
// written here, saved as WAV files the fake microphone can play.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderNotes, type MidiNote } from '../fixtures/render.ts';
import { encodeWav } from '../../wasm/wav.ts';

export const MIC_RATE = 44_100;

/** A seeded pseudo-random tune: a melody over a bass line, varied enough to fingerprint. */
export function tune(seed: number, seconds: number): MidiNote[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
  const scale = [0, 2, 4, 5, 7, 9, 11, 12];
  const notes: MidiNote[] = [];
  for (let t = 0.1; t < seconds - 0.5; ) {
    const dur = [0.2, 0.3, 0.4, 0.6][Math.floor(rand() * 4)];
    notes.push({ note: 60 + scale[Math.floor(rand() * scale.length)] + (rand() < 0.3 ? 12 : 0), start: t, duration: dur * 0.9, velocity: 70 + Math.floor(rand() * 50) });
    t += dur;
  }
  for (let t = 0.1; t < seconds - 0.5; t += 0.8) {
    notes.push({ note: 36 + scale[Math.floor(rand() * 5)], start: t, duration: 0.7, velocity: 90 });
  }
  return notes;
}

/** Renders notes on a GM program and writes them as a 16-bit WAV in a fresh temporary directory. */
export function renderWavFile(name: string, notes: MidiNote[], program: number, seconds?: number): { path: string; bytes: Uint8Array<ArrayBuffer>; samples: Float32Array } {
  let samples = renderNotes(notes, program, MIC_RATE);
  if (seconds) samples = samples.subarray(0, Math.round(seconds * MIC_RATE));
  const bytes = new Uint8Array(encodeWav(samples, MIC_RATE));
  const path = join(mkdtempSync(join(tmpdir(), 'roomtone-browser-')), name);
  writeFileSync(path, bytes);
  return { path, bytes, samples };
}
