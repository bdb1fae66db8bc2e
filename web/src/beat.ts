// The beat indicator is a pure function of the playhead's beat position, not
// of when a message arrived or a timer fired: every screen computes the same
// beat position for the same instant, so every screen flashes together.

/** How long a flash lasts: a fixed slice of the beat, capped so slow tempos still blink. */
export const FLASH_MS = 110;
export const FLASH_BEAT_FRACTION_MAX = 0.35;

export interface BeatLight {
  /** 0-based beat within the bar whose light is current. */
  index: number;
  flash: boolean;
  downbeat: boolean;
}

export function beatLight(beatPos: number, beatsPerBar: number, bpm: number, moving: boolean): BeatLight {
  const whole = Math.floor(beatPos + 1e-9);
  const index = ((whole % beatsPerBar) + beatsPerBar) % beatsPerBar;
  const intoBeatMs = (beatPos - whole) * (60_000 / bpm);
  const limitMs = Math.min(FLASH_MS, FLASH_BEAT_FRACTION_MAX * (60_000 / bpm));
  return { index, flash: moving && intoBeatMs < limitMs, downbeat: index === 0 };
}

/** The beat position of a bar line `bars` bars away: forward goes to the next bar, back to the start of this bar unless it just began. */
export function barStep(beatPos: number, beatsPerBar: number, bars: number): number {
  const bar = beatPos / beatsPerBar;
  // A tenth of a bar of grace: pressing "back" right after a bar line goes to the previous one, as DAWs do.
  const base = bars > 0 ? Math.floor(bar + 1e-6) : Math.ceil(bar - 0.1);
  return Math.max(0, (base + bars) * beatsPerBar);
}
