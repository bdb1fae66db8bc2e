import { describe, expect, it } from 'vitest';
import { FrameBatcher } from './frame-batcher.ts';

const frame = (start: number, n: number) => Float32Array.from({ length: n }, (_, i) => start + i);

describe('FrameBatcher', () => {
  it('hands over whole frames in order once they reach the batch size', () => {
    const b = new FrameBatcher(10);
    expect(b.push(frame(0, 4))).toBeNull();
    expect(b.push(frame(4, 4))).toBeNull();
    expect(b.held).toBe(8);
    const first = b.push(frame(8, 4))!;
    expect(b.held).toBe(0);
    expect(Array.from(first)).toEqual(Array.from(frame(0, 12)));
    expect(b.push(frame(12, 4))).toBeNull();
    const second = b.push(frame(16, 6))!;
    expect(Array.from(second)).toEqual(Array.from(frame(12, 10)));
  });

  it('passes a frame as large as a batch straight through, and forgets what it held when cleared', () => {
    const b = new FrameBatcher(4);
    expect(b.push(frame(0, 2))).toBeNull();
    b.clear();
    expect(b.held).toBe(0);
    const only = b.push(frame(10, 4))!;
    expect(Array.from(only)).toEqual([10, 11, 12, 13]);
    expect(b.push(new Float32Array(0))).toBeNull();
  });

  it('refuses a batch size that is not a positive whole number of samples', () => {
    for (const n of [0, -1, 2.5, Number.NaN]) expect(() => new FrameBatcher(n)).toThrow(RangeError);
    const b = new FrameBatcher(4);
    expect(() => (b.minSamples = 0)).toThrow(RangeError);
    expect(b.minSamples).toBe(4);
  });

  it('takes a new batch size from the next frame on, keeping what it holds', () => {
    // The match stream advises 0.5 s batches while a decision may be near and 2 s ones after.
    const b = new FrameBatcher(4);
    expect(b.push(frame(0, 2))).toBeNull();
    b.minSamples = 8;
    expect(b.push(frame(2, 2))).toBeNull();
    expect(b.push(frame(4, 2))).toBeNull();
    expect(Array.from(b.push(frame(6, 2))!)).toEqual(Array.from(frame(0, 8)));
    b.minSamples = 2;
    expect(Array.from(b.push(frame(8, 2))!)).toEqual([8, 9]);
  });
});
