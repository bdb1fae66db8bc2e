// Onsets from pitch: a legato note on a bowed or blown instrument can start
// with no rise in energy at all (the bow changes direction, a finger moves),
// so spectral flux misses it. When the tracked pitch settles on a new note —
// more than NEW_NOTE_SEMITONES from the last settled one, for CONFIRM_FRAMES
// frames — that is an onset too, placed where the new pitch first appeared.
// A note that comes back at the same pitch after a gap is not one (noise can
// hide a decaying note for a few frames); repeated notes have attacks, which
// the flux detector sees.
import { hzToMidi } from './notes.ts';

const NEW_NOTE_SEMITONES = 0.6;
/** Frames the new pitch must hold (within CANDIDATE_SEMITONES) before it counts. */
const CONFIRM_FRAMES = 4;
/** Every frame of the new pitch must be this clear… */
const MIN_CLARITY = 0.85;
/** …and the level may not fall by more than this across them: a decaying tail that changes pitch under reverb is not a note. */
const MAX_FALL_DB = 1.5;
const CANDIDATE_SEMITONES = 0.4;
/** Hops before the first frame of the new pitch where the onset is placed. */
const OFFSET_HOPS = 0.5;

export class PitchOnsets {
  private settled: number | null = null;
  private candidate = 0;
  private candidateStart = -1;
  private candidateCount = 0;
  private candidateLevel = 0;

  reset(): void {
    this.settled = null;
    this.candidateStart = -1;
    this.candidateCount = 0;
  }

  /**
   * Feeds frame `frame`'s pitch; returns the (fractional) frame position of a
   * pitch onset confirmed now, or -1.
   */
  process(frame: number, voiced: boolean, hz: number, clarity: number, levelDb: number): number {
    if (!voiced || clarity < MIN_CLARITY) {
      this.candidateStart = -1;
      this.candidateCount = 0;
      return -1;
    }
    const m = hzToMidi(hz);
    if (this.settled !== null && Math.abs(m - this.settled) <= NEW_NOTE_SEMITONES) {
      this.candidateStart = -1;
      this.candidateCount = 0;
      return -1;
    }
    if (this.candidateStart < 0 || Math.abs(m - this.candidate) > CANDIDATE_SEMITONES) {
      this.candidate = m;
      this.candidateStart = frame;
      this.candidateCount = 1;
      this.candidateLevel = levelDb;
    } else this.candidateCount++;
    if (this.candidateCount < CONFIRM_FRAMES) return -1;
    if (levelDb < this.candidateLevel - MAX_FALL_DB && this.settled !== null) {
      // Settle on it (it is what sounds now) without calling it an onset.
      this.settled = this.candidate;
      this.candidateStart = -1;
      this.candidateCount = 0;
      return -1;
    }
    const first = this.settled === null;
    this.settled = this.candidate;
    const start = this.candidateStart;
    this.candidateStart = -1;
    this.candidateCount = 0;
    // The very first note of a stream is the flux detector's (or the stream start's).
    return first ? -1 : start - OFFSET_HOPS;
  }
}
