// Frequencies as notes: MIDI numbers, names with octave (A4 = 440 Hz) and cents.

const NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'] as const;

export const A4_HZ = 440;

/** Fractional MIDI note number: 69 is A4. */
export function hzToMidi(hz: number): number {
  return 69 + 12 * Math.log2(hz / A4_HZ);
}

export function midiToHz(midi: number): number {
  return A4_HZ * 2 ** ((midi - 69) / 12);
}

/** "C4", "F#2", "A-1": sharps, octave numbers as in scientific pitch notation (MIDI 60 is C4). */
export function midiName(midi: number): string {
  const n = Math.round(midi);
  return NAMES[((n % 12) + 12) % 12] + String(Math.floor(n / 12) - 1);
}

/** Name of the nearest note and how far `hz` lies from it, in cents (-50..50). */
export function describePitch(hz: number): { midi: number; note: string; cents: number } {
  const m = hzToMidi(hz);
  const n = Math.round(m);
  return { midi: n, note: midiName(n), cents: Math.round((m - n) * 1000) / 10 };
}

/** Cents from `ref` to `hz`. */
export function centsBetween(hz: number, ref: number): number {
  return 1200 * Math.log2(hz / ref);
}
