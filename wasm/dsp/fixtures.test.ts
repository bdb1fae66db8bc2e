// Rendered instrument notes (FluidSynth, FluidR3 GM; tests/fixtures/render.ts
// writes them and notes.json, the MIDI they came from).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadKissFFT } from '../kissfft-node.ts';
import { decodeWav } from '../wav.ts';
import { analyzeSamples } from './offline.ts';
import { hzToMidi } from './notes.ts';
import { scoreOnsets } from '../../bench/support/metrics.ts';
import { FIXTURE_DIR, type MidiNote } from '../../tests/fixtures/render.ts';

const kiss = await loadKissFFT();
const manifest = JSON.parse(readFileSync(join(FIXTURE_DIR, 'notes.json'), 'utf8')) as Record<string, { instrument: string; notes: MidiNote[] }>;

function load(file: string) {
  const wav = decodeWav(readFileSync(join(FIXTURE_DIR, file)));
  return { wav, doc: analyzeSamples(kiss, wav.samples, wav.sampleRate) };
}

describe('rendered instrument notes', () => {
  for (const [file, m] of Object.entries(manifest)) {
    it(`${m.instrument}: every note reads as its MIDI note`, () => {
      const { doc } = load(file);
      for (const n of m.notes) {
        // The body of the note: past the attack, before the release.
        const frames = doc.frames.filter((f) => f.t >= n.start + 0.04 && f.t <= n.start + n.duration - 0.02);
        const voiced = frames.filter((f) => f.f0 !== null);
        expect(voiced.length / frames.length, `${file} MIDI ${n.note} voiced`).toBeGreaterThan(0.6);
        // FluidR3's marimba A4 sample is 50–60 cents flat (aubiopitch reads 68.47 too).
        const tol = file === 'marimba-run.wav' ? 0.7 : 0.5;
        const right = voiced.filter((f) => Math.abs(hzToMidi(f.f0!) - n.note) < tol).length;
        expect(right / voiced.length, `${file} MIDI ${n.note}`).toBeGreaterThan(0.9);
      }
    });
  }

  it('calls the silence before, between and after notes unvoiced', () => {
    const { doc } = load('trumpet.wav');
    const notes = manifest['trumpet.wav'].notes;
    // Frames at least 150 ms after a note's end and 50 ms before the next.
    const quiet = doc.frames.filter((f) => notes.every((n) => f.t < n.start - 0.05 || f.t > n.start + n.duration + 0.15));
    expect(quiet.length).toBeGreaterThan(20);
    expect(quiet.filter((f) => f.f0 !== null).length / quiet.length).toBeLessThan(0.05);
  });

  for (const file of ['piano.wav', 'guitar.wav', 'trumpet.wav', 'marimba-run.wav']) {
    it(`${manifest[file].instrument}: finds every onset within 20 ms and no others`, () => {
      const { doc } = load(file);
      const ref = manifest[file].notes.map((n) => n.start);
      const s = scoreOnsets(doc.onsets, ref, 0.02);
      expect(s.fn, `missed in ${file}: ${JSON.stringify(doc.onsets)}`).toBe(0);
      expect(s.fp, `extra in ${file}: ${JSON.stringify(doc.onsets)}`).toBe(0);
    });
  }

  it('finds the onsets of slow-attack instruments within 50 ms', () => {
    for (const file of ['flute.wav', 'cello.wav']) {
      const { doc } = load(file);
      const s = scoreOnsets(doc.onsets, manifest[file].notes.map((n) => n.start), 0.05);
      expect(s.f, `${file}: ${JSON.stringify(doc.onsets)}`).toBeGreaterThanOrEqual(0.8);
    }
  });
});
