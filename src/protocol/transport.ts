// The transport line: "at server time T the playhead was at sample S, moving
// at R samples per second". Every party (room, agent, browser, CLI) evaluates
// the same functions, so a playhead is drawn locally at display rate instead of
// being pushed 30 times a second.

export type TransportStatus = 'playing' | 'paused' | 'stopped';

export interface Anchor {
  /** Changes at every discontinuity: play, stop, pause, resume, seek, tempo, clock correction. */
  version: number;
  status: TransportStatus;
  /** Server time (ms since the Unix epoch) at which the playhead is at `sample`. */
  server_ms: number;
  /** Sample position at `server_ms`. Before `server_ms` the playhead waits at `sample` (scheduled starts). */
  sample: number;
  /** Samples per second the playhead advances by: 0 unless playing; the device's real rate when an agent drives it. */
  rate: number;
  /** Nominal sample rate: converts samples to seconds and beats. */
  sample_rate: number;
  bpm: number;
  beats_per_bar: number;
  /** The beat grid: at sample `beat_origin_sample` the beat position is `beat_origin_beat`. */
  beat_origin_sample: number;
  beat_origin_beat: number;
}

export interface Position {
  playing: boolean;
  status: TransportStatus;
  sample_pos: number;
  seconds: number;
  beat_pos: number;
  bar: number;
  beat_in_bar: number;
  version: number;
}

export const TEMPO_MIN = 20;
export const TEMPO_MAX = 999;
export const SAMPLE_RATE_MIN = 8000;
export const SAMPLE_RATE_MAX = 192000;

export function sampleAt(a: Anchor, serverMs: number): number {
  if (a.rate === 0 || serverMs <= a.server_ms) return a.sample;
  return a.sample + ((serverMs - a.server_ms) / 1000) * a.rate;
}

export function beatsAtSample(a: Anchor, sample: number): number {
  return a.beat_origin_beat + ((sample - a.beat_origin_sample) / a.sample_rate) * (a.bpm / 60);
}

export function sampleAtBeats(a: Anchor, beats: number): number {
  return a.beat_origin_sample + ((beats - a.beat_origin_beat) * 60 * a.sample_rate) / a.bpm;
}

/** Bars and beats count from 1, as DAWs show them; pre-roll before beat 0 gives bar 0 and below. */
export function barBeat(beats: number, beatsPerBar: number): { bar: number; beat_in_bar: number } {
  const bar = Math.floor(beats / beatsPerBar);
  const inBar = beats - bar * beatsPerBar;
  return { bar: bar + 1, beat_in_bar: Math.min(beatsPerBar, Math.floor(inBar + 1e-9) + 1) };
}

export function positionAt(a: Anchor, serverMs: number): Position {
  const sample = sampleAt(a, serverMs);
  const beats = beatsAtSample(a, sample);
  return {
    playing: a.status === 'playing',
    status: a.status,
    sample_pos: sample,
    seconds: sample / a.sample_rate,
    beat_pos: beats,
    ...barBeat(beats, a.beats_per_bar),
    version: a.version,
  };
}

/** "MM:SS.mmm"; minutes keep counting past 99. */
export function formatTime(seconds: number): string {
  const totalMs = Math.max(0, Math.floor(seconds * 1000 + 1e-6));
  const ms = totalMs % 1000;
  const s = Math.floor(totalMs / 1000) % 60;
  const m = Math.floor(totalMs / 60000);
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}`;
}

/** The classic clock-server frame: what GET /transport returns and what tick streams push. */
export interface TransportFrame {
  playing: boolean;
  status: TransportStatus;
  sample_pos: number;
  sample_rate: number;
  time_seconds: number;
  time_formatted: string;
  bpm: number;
  beat_pos: number;
  bar: number;
  beat_in_bar: number;
  beats_per_bar: number;
  timestamp_ms: number;
  version: number;
}

export function frameAt(a: Anchor, serverMs: number): TransportFrame {
  const p = positionAt(a, serverMs);
  return {
    playing: p.playing,
    status: p.status,
    sample_pos: Math.floor(p.sample_pos),
    sample_rate: a.sample_rate,
    time_seconds: p.seconds,
    time_formatted: formatTime(p.seconds),
    bpm: a.bpm,
    beat_pos: p.beat_pos,
    bar: p.bar,
    beat_in_bar: p.beat_in_bar,
    beats_per_bar: a.beats_per_bar,
    timestamp_ms: serverMs,
    version: a.version,
  };
}

export function initialAnchor(opts: { sample_rate: number; bpm: number; beats_per_bar: number; now: number }): Anchor {
  return {
    version: 1,
    status: 'stopped',
    server_ms: opts.now,
    sample: 0,
    rate: 0,
    sample_rate: opts.sample_rate,
    bpm: opts.bpm,
    beats_per_bar: opts.beats_per_bar,
    beat_origin_sample: 0,
    beat_origin_beat: 0,
  };
}

// Transitions. Each returns the same object when nothing changes, so callers
// can tell a no-op (no version bump, nothing broadcast) by identity.

function moved(a: Anchor, now: number, patch: Partial<Anchor>): Anchor {
  return { ...a, server_ms: now, sample: sampleAt(a, now), ...patch, version: a.version + 1 };
}

/**
 * Start playing at `startMs` (server time, >= now), from the current position.
 * A scheduled start is an anchor in the future: everyone starts on that instant.
 */
export function play(a: Anchor, now: number, startMs = now): Anchor {
  if (a.status === 'playing') return a;
  return { ...a, status: 'playing', server_ms: Math.max(now, startMs), sample: a.sample, rate: a.sample_rate, version: a.version + 1 };
}

/**
 * The next bar line of the room's free-running bar clock: bars of the current
 * tempo counted from server time 0, like a metronome that keeps running while
 * the transport is stopped. Starts never come sooner than `minLeadMs`.
 */
export function nextBarMs(a: Anchor, now: number, minLeadMs = 100): number {
  const barMs = (a.beats_per_bar * 60000) / a.bpm;
  let t = Math.ceil(now / barMs) * barMs;
  if (t - now < minLeadMs) t += barMs;
  return t;
}

export function pause(a: Anchor, now: number): Anchor {
  if (a.status !== 'playing') return a;
  return moved(a, now, { status: 'paused', rate: 0 });
}

export function resume(a: Anchor, now: number): Anchor {
  if (a.status === 'playing') return a;
  return play(a, now);
}

/** Stop returns to zero, as a DAW's stop-twice does; pause keeps the position. */
export function stop(a: Anchor, now: number): Anchor {
  if (a.status === 'stopped' && a.sample === 0) return a;
  return { ...a, status: 'stopped', server_ms: now, sample: 0, rate: 0, version: a.version + 1 };
}

export function seek(a: Anchor, now: number, sample: number): Anchor {
  const target = Math.max(0, sample);
  // A seek during a pending start keeps the scheduled instant.
  const pending = a.status === 'playing' && a.server_ms > now;
  return { ...a, server_ms: pending ? a.server_ms : now, sample: target, version: a.version + 1 };
}

/** Changes tempo keeping both the playhead and the beat position continuous. */
export function tempo(a: Anchor, now: number, bpm: number, beatsPerBar = a.beats_per_bar): Anchor {
  if (bpm === a.bpm && beatsPerBar === a.beats_per_bar) return a;
  const here = sampleAt(a, now);
  const pending = a.status === 'playing' && a.server_ms > now;
  return {
    ...a,
    server_ms: pending ? a.server_ms : now,
    sample: here,
    bpm,
    beats_per_bar: beatsPerBar,
    beat_origin_sample: here,
    beat_origin_beat: beatsAtSample(a, here),
    version: a.version + 1,
  };
}
