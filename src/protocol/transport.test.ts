import { describe, expect, it } from 'vitest';
import {
  barBeat,
  formatTime,
  frameAt,
  initialAnchor,
  nextBarMs,
  pause,
  play,
  positionAt,
  resume,
  sampleAtBeats,
  seek,
  stop,
  tempo,
} from './transport.ts';

const T0 = 1_700_000_000_000;
const fresh = () => initialAnchor({ sample_rate: 48_000, bpm: 120, beats_per_bar: 4, now: T0 });

describe('anchor math', () => {
  it('holds still while stopped and advances at the sample rate while playing', () => {
    const a = fresh();
    expect(positionAt(a, T0 + 5000).sample_pos).toBe(0);
    const p = play(a, T0 + 1000);
    expect(p.version).toBe(a.version + 1);
    const at = positionAt(p, T0 + 3500);
    expect(at.sample_pos).toBe(2.5 * 48_000);
    expect(at.seconds).toBeCloseTo(2.5, 9);
    expect(at.beat_pos).toBeCloseTo(5, 9); // 120 BPM: 2 beats per second
    expect(at).toMatchObject({ bar: 2, beat_in_bar: 2, playing: true });
  });

  it('waits at the anchor before a scheduled start and then runs from it', () => {
    const p = play(fresh(), T0, T0 + 2000);
    expect(positionAt(p, T0 + 1999).sample_pos).toBe(0);
    expect(positionAt(p, T0 + 2500).sample_pos).toBe(24_000);
  });

  it('pauses in place, resumes from there, and stop returns to zero', () => {
    const p = play(fresh(), T0);
    const paused = pause(p, T0 + 1500);
    expect(paused.status).toBe('paused');
    expect(positionAt(paused, T0 + 9999).sample_pos).toBe(72_000);
    const resumed = resume(paused, T0 + 5000);
    expect(positionAt(resumed, T0 + 6000).sample_pos).toBe(72_000 + 48_000);
    const stopped = stop(resumed, T0 + 7000);
    expect(positionAt(stopped, T0 + 8000)).toMatchObject({ sample_pos: 0, status: 'stopped', playing: false });
  });

  it('returns the same object for no-op transitions so nothing is broadcast', () => {
    const a = fresh();
    expect(pause(a, T0)).toBe(a);
    expect(stop(a, T0)).toBe(a);
    const p = play(a, T0);
    expect(play(p, T0 + 10)).toBe(p);
    expect(resume(p, T0 + 10)).toBe(p);
    expect(tempo(p, T0, 120)).toBe(p);
  });

  it('seeks while playing and keeps moving from the new position', () => {
    const p = play(fresh(), T0);
    const s = seek(p, T0 + 1000, 480_000);
    expect(positionAt(s, T0 + 1000).sample_pos).toBe(480_000);
    expect(positionAt(s, T0 + 2000).sample_pos).toBe(528_000);
  });

  it('keeps a scheduled start when seeking before it', () => {
    const p = play(fresh(), T0, T0 + 2000);
    const s = seek(p, T0 + 500, 96_000);
    expect(positionAt(s, T0 + 1500).sample_pos).toBe(96_000);
    expect(positionAt(s, T0 + 3000).sample_pos).toBe(96_000 + 48_000);
  });

  it('changes tempo mid-play with the playhead and the beat position continuous', () => {
    const p = play(fresh(), T0);
    const before = positionAt(p, T0 + 3000); // 6 beats
    const t = tempo(p, T0 + 3000, 90);
    const after = positionAt(t, T0 + 3000);
    expect(after.sample_pos).toBeCloseTo(before.sample_pos, 6);
    expect(after.beat_pos).toBeCloseTo(6, 9);
    // One second later at 90 BPM: 1.5 more beats.
    expect(positionAt(t, T0 + 4000).beat_pos).toBeCloseTo(7.5, 9);
  });

  it('converts beats to samples on the current grid, across a tempo change', () => {
    const t = tempo(play(fresh(), T0), T0 + 3000, 60); // beat 6 at sample 144000
    expect(sampleAtBeats(t, 6)).toBeCloseTo(144_000, 6);
    expect(sampleAtBeats(t, 8)).toBeCloseTo(144_000 + 2 * 48_000, 6);
  });

  it('counts bars and beats from 1, with pre-roll before beat 0 in bar 0', () => {
    expect(barBeat(0, 4)).toEqual({ bar: 1, beat_in_bar: 1 });
    expect(barBeat(3.99, 4)).toEqual({ bar: 1, beat_in_bar: 4 });
    expect(barBeat(4, 4)).toEqual({ bar: 2, beat_in_bar: 1 });
    expect(barBeat(13.5, 3)).toEqual({ bar: 5, beat_in_bar: 2 });
    expect(barBeat(-1, 4)).toEqual({ bar: 0, beat_in_bar: 4 });
  });

  it('formats time as MM:SS.mmm and keeps counting minutes past an hour', () => {
    expect(formatTime(0)).toBe('00:00.000');
    expect(formatTime(61.2345)).toBe('01:01.234');
    expect(formatTime(3 * 3600 + 5)).toBe('180:05.000');
  });

  it('finds the next bar line of the free-running bar clock, never too soon', () => {
    const a = fresh(); // 2 s bars
    const t = nextBarMs(a, 1_000_000_500);
    expect(t % 2000).toBe(0);
    expect(t).toBeGreaterThanOrEqual(1_000_000_500 + 100);
    expect(t - 1_000_000_500).toBeLessThanOrEqual(2100);
    expect(nextBarMs(a, 1_000_001_950)).toBe(1_000_004_000);
  });

  it('produces the classic frame with every field', () => {
    const f = frameAt(play(fresh(), T0), T0 + 1234);
    expect(f).toEqual({
      playing: true,
      status: 'playing',
      sample_pos: 59_232,
      sample_rate: 48_000,
      time_seconds: 1.234,
      time_formatted: '00:01.234',
      bpm: 120,
      beat_pos: expect.closeTo(2.468, 9),
      bar: 1,
      beat_in_bar: 3,
      beats_per_bar: 4,
      timestamp_ms: T0 + 1234,
      version: 2,
    });
  });
});
