import { describe, expect, it } from 'vitest';
import { MAX_BATCH_S, PendingAudio } from './pending-audio.ts';

const RATE = 22050;

/** A frame of `seconds` whose samples count up from `from`, so a batch's order and content can be checked. */
function frame(seconds: number, from = 0): Float32Array {
  const x = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < x.length; i++) x[i] = from + i;
  return x;
}

describe('PendingAudio', () => {
  it('makes a batch due once the batch length waits, and takes it whole', () => {
    const p = new PendingAudio(RATE);
    for (let i = 0; i < 4; i++) p.add(frame(0.1, i * 2205));
    expect(p.due(0.5)).toBe(false);
    p.add(frame(0.1, 4 * 2205));
    expect(p.due(0.5)).toBe(true);
    expect(p.due(2)).toBe(false);
    const b = p.take();
    expect(b.seconds).toBeCloseTo(0.5, 9);
    expect(b.samples.length).toBe(5 * 2205);
    for (let i = 0; i < b.samples.length; i++) expect(b.samples[i]).toBe(i);
    expect(p.seconds).toBe(0);
    expect(p.due(0.5)).toBe(false);
  });

  it('joins everything that arrived meanwhile into one batch of whole frames, up to the longest batch', () => {
    const p = new PendingAudio(RATE);
    // A clip sent at once: forty 0.5 s frames wait behind the matcher.
    for (let i = 0; i < 40; i++) p.add(frame(0.5));
    const sizes: number[] = [];
    while (p.due(0.5)) sizes.push(p.take().seconds);
    expect(sizes).toEqual(Array(5).fill(MAX_BATCH_S));
    expect(p.seconds).toBe(0);
  });

  it('takes one frame longer than the longest batch on its own, and frames after it in the next batch', () => {
    const p = new PendingAudio(RATE);
    p.add(frame(MAX_BATCH_S + 1));
    p.add(frame(0.5, -1));
    expect(p.take().seconds).toBeCloseTo(MAX_BATCH_S + 1, 9);
    expect(p.seconds).toBeCloseTo(0.5, 9);
    expect(p.take().samples[0]).toBe(-1);
  });

  it('makes a short remainder due while draining, and stops draining once nothing waits', () => {
    const p = new PendingAudio(RATE);
    p.drain();
    p.add(frame(0.3));
    // Drained before this frame came: it waits for a whole batch like any other.
    expect(p.due(0.5)).toBe(false);
    p.drain();
    expect(p.due(0.5)).toBe(true);
    expect(p.take().seconds).toBeCloseTo(0.3, 9);
    p.add(frame(0.3));
    expect(p.due(0.5)).toBe(false);
  });

  it('ignores empty frames and refuses a sample rate that is not positive', () => {
    const p = new PendingAudio(RATE);
    p.add(new Float32Array(0));
    expect(p.seconds).toBe(0);
    expect(p.due(0)).toBe(false);
    expect(() => new PendingAudio(0)).toThrow(/positive/);
  });
});
