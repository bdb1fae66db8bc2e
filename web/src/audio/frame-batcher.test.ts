import { describe, expect, it } from 'vitest';
import { FrameBatcher } from './frame-batcher.ts';

const frame = (start: number, n: number) => Float32Array.from({ length: n }, (_, i) => start + i);

describe('FrameBatcher', () => {
  it('hands over whole frames in order once they reach the batch size, stamped with the first frame’s capture time', () => {
    const b = new FrameBatcher(10);
    expect(b.push(frame(0, 4), 1000)).toBeNull();
    expect(b.push(frame(4, 4), 1004)).toBeNull();
    expect(b.held).toBe(8);
    const first = b.push(frame(8, 4), 1008)!;
    expect(b.held).toBe(0);
    expect(Array.from(first.samples)).toEqual(Array.from(frame(0, 12)));
    expect(first.capturedAtLocalMs).toBe(1000);
    expect(b.push(frame(12, 4), 1012)).toBeNull();
    const second = b.push(frame(16, 6), 1016)!;
    expect(Array.from(second.samples)).toEqual(Array.from(frame(12, 10)));
    expect(second.capturedAtLocalMs).toBe(1012);
  });

  it('passes a frame as large as a batch straight through, and forgets what it held when cleared', () => {
    const b = new FrameBatcher(4);
    expect(b.push(frame(0, 2), 5)).toBeNull();
    b.clear();
    expect(b.held).toBe(0);
    const only = b.push(frame(10, 4), 9)!;
    expect(Array.from(only.samples)).toEqual([10, 11, 12, 13]);
    expect(only.capturedAtLocalMs).toBe(9);
    expect(b.push(new Float32Array(0), 1)).toBeNull();
  });

  it('refuses a batch size that is not a positive whole number of samples', () => {
    for (const n of [0, -1, 2.5, Number.NaN]) expect(() => new FrameBatcher(n)).toThrow(RangeError);
  });
});
