// Multi-instrument General MIDI pieces for the identification benchmark:
// drums, bass, a harmony instrument and a melody over a chord progression,
// with sections that repeat (as songs do) but are humanised note by note, so
// a repeat sounds alike without being the same samples. Rendered by
// fluidsynth with the FluidR3 GM soundfont into real-instrument audio.
import { rng } from '../../wasm/fingerprint/test-signals.ts';

interface NoteEvent {
  tick: number;
  on: boolean;
  channel: number;
  note: number;
  velocity: number;
}

const PPQ = 480;

function varLen(n: number): number[] {
  const bytes = [n & 0x7f];
  while ((n >>= 7)) bytes.unshift((n & 0x7f) | 0x80);
  return bytes;
}

/** A format-0 Standard MIDI File. */
export function writeSmf(events: NoteEvent[], programs: Map<number, number>, bpm: number): Uint8Array {
  const body: number[] = [];
  const usPerBeat = Math.round(60_000_000 / bpm);
  body.push(0, 0xff, 0x51, 3, (usPerBeat >> 16) & 0xff, (usPerBeat >> 8) & 0xff, usPerBeat & 0xff);
  for (const [ch, prog] of programs) body.push(0, 0xc0 | ch, prog);
  events.sort((a, b) => a.tick - b.tick || Number(a.on) - Number(b.on));
  let last = 0;
  for (const e of events) {
    body.push(...varLen(Math.max(0, e.tick - last)), (e.on ? 0x90 : 0x80) | e.channel, e.note, e.on ? e.velocity : 0);
    last = Math.max(last, e.tick);
  }
  body.push(0, 0xff, 0x2f, 0);
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1, (PPQ >> 8) & 0xff, PPQ & 0xff];
  const len = body.length;
  const track = [0x4d, 0x54, 0x72, 0x6b, (len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff];
  return new Uint8Array([...header, ...track, ...body]);
}

const MAJOR = [0, 2, 4, 5, 7, 9, 11];
const MINOR = [0, 2, 3, 5, 7, 8, 10];
const PROGRESSIONS = [
  [0, 4, 5, 3],
  [0, 5, 3, 4],
  [5, 3, 0, 4],
  [0, 3, 4, 4],
  [0, 2, 3, 4],
  [1, 4, 0, 0],
];
const HARMONY = [0, 1, 4, 5, 16, 19, 24, 25, 48, 49, 50, 88, 89, 90];
const MELODY = [11, 40, 41, 56, 65, 66, 68, 71, 73, 74, 80, 81, 13, 22];
const BASS = [32, 33, 34, 35, 38, 39];

export interface Composition {
  midi: Uint8Array;
  bpm: number;
  seconds: number;
  description: string;
}

/** A piece of about `seconds` seconds, fully determined by `seed`. */
export function compose(seed: number, seconds: number): Composition {
  const rand = rng(seed * 7919 + 13);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  const bpm = 72 + Math.floor(rand() * 80);
  const scale = rand() < 0.5 ? MAJOR : MINOR;
  const root = 45 + Math.floor(rand() * 12);
  const prog = pick(PROGRESSIONS);
  const harmonyProg = pick(HARMONY);
  const melodyProg = pick(MELODY);
  const bassProg = pick(BASS);
  const programs = new Map([
    [0, bassProg],
    [1, harmonyProg],
    [2, melodyProg],
  ]);
  const barTicks = 4 * PPQ;
  const bars = Math.ceil((seconds * bpm) / 60 / 4);
  const events: NoteEvent[] = [];
  const jitter = () => Math.round((rand() - 0.5) * PPQ * 0.04);
  const vel = (base: number) => Math.max(20, Math.min(127, Math.round(base + (rand() - 0.5) * 24)));
  const note = (tick: number, len: number, channel: number, n: number, v: number) => {
    const t = Math.max(0, tick + jitter());
    events.push({ tick: t, on: true, channel, note: n, velocity: vel(v) });
    events.push({ tick: t + Math.max(10, len - 10), on: false, channel, note: n, velocity: 0 });
  };
  const degreeNote = (degree: number, octave: number) => {
    const d = ((degree % 7) + 7) % 7;
    return root + octave * 12 + scale[d] + 12 * Math.floor(degree / 7);
  };
  // Two melodic phrases (A, B) of 4 bars each; sections go A A B A and repeat.
  const phrase = () => {
    const notes: Array<{ beat: number; len: number; degree: number }> = [];
    let degree = Math.floor(rand() * 5);
    for (let beat = 0; beat < 16; ) {
      const len = pick([0.5, 0.5, 1, 1, 1.5, 2]);
      degree = Math.max(-2, Math.min(11, degree + pick([-2, -1, -1, 0, 1, 1, 2, 3])));
      if (rand() > 0.15) notes.push({ beat, len: Math.min(len, 16 - beat), degree });
      beat += len;
    }
    return notes;
  };
  const phrases = [phrase(), phrase()];
  const form = [0, 0, 1, 0];
  const arpeggio = rand() < 0.5;
  const drumStyle = Math.floor(rand() * 3);
  for (let bar = 0; bar < bars; bar++) {
    const t0 = bar * barTicks;
    const chordDegree = prog[bar % prog.length];
    const chord = [chordDegree, chordDegree + 2, chordDegree + 4];
    // Bass: root on the beat, a fifth now and then.
    for (let beat = 0; beat < 4; beat++) {
      const deg = beat === 2 && rand() < 0.4 ? chordDegree + 4 : chordDegree;
      note(t0 + beat * PPQ, PPQ * 0.9, 0, degreeNote(deg, -1), 90);
    }
    // Harmony: block chords or arpeggios.
    if (arpeggio) {
      for (let i = 0; i < 8; i++) note(t0 + (i * PPQ) / 2, PPQ / 2, 1, degreeNote(chord[i % 3] + (i >= 3 ? 7 : 0), 0), 70);
    } else {
      for (const beat of [0, 2]) for (const d of chord) note(t0 + beat * PPQ, PPQ * 2, 1, degreeNote(d, 0), 65);
    }
    // Melody from the phrase of this section.
    const section = form[Math.floor(bar / 4) % form.length];
    const inPhrase = bar % 4;
    for (const n of phrases[section]) {
      if (n.beat < inPhrase * 4 || n.beat >= (inPhrase + 1) * 4) continue;
      note(t0 + (n.beat - inPhrase * 4) * PPQ, n.len * PPQ, 2, degreeNote(n.degree, 1), 95);
    }
    // Drums (channel 10): kick, snare, hats.
    for (let eighth = 0; eighth < 8; eighth++) {
      const t = t0 + (eighth * PPQ) / 2;
      if (drumStyle !== 2 || eighth % 2 === 0) note(t, PPQ / 4, 9, 42, 60);
      if (eighth === 0 || eighth === 4 || (drumStyle === 1 && eighth === 5)) note(t, PPQ / 4, 9, 36, 110);
      if (eighth === 2 || eighth === 6) note(t, PPQ / 4, 9, 38, 100);
    }
  }
  return {
    midi: writeSmf(events, programs, bpm),
    bpm,
    seconds: (bars * 4 * 60) / bpm,
    description: `${bpm} BPM, GM programs bass ${bassProg}, harmony ${harmonyProg}, melody ${melodyProg}`,
  };
}
