import { describe, expect, it } from 'vitest';
import { ClockSync } from './clock-sync.ts';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';

/** Simulates an exchange over a path with the given one-way delays and a true offset. */
function exchange(sync: ClockSync, localT0: number, trueOffset: number, up: number, down: number, serverHold = 0) {
  const t1 = Math.floor(localT0 + up + trueOffset);
  const t2 = Math.floor(localT0 + up + serverHold + trueOffset);
  const t3 = localT0 + up + serverHold + down;
  return sync.add(localT0, t1, t2, t3);
}

describe('clock sync', () => {
  it('recovers the offset within a millisecond through symmetric jittery paths', () => {
    const sync = new ClockSync();
    let seed = 7;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let i = 0; i < 40; i++) exchange(sync, 1e12 + i * 30 + rand(), 1234.56, 40 + rand() * 30, 40 + rand() * 30);
    expect(Math.abs(sync.offsetMs - 1234.56)).toBeLessThan(1.5);
    expect(sync.uncertaintyMs).toBeLessThan(45);
  });

  it('prefers the lowest round trips: queueing delay on some samples does not bias it', () => {
    const sync = new ClockSync({ best: 3 });
    for (let i = 0; i < 10; i++) exchange(sync, 1e12 + i * 50 + 0.3, -500, 10, 10);
    for (let i = 0; i < 10; i++) exchange(sync, 1e12 + 1000 + i * 50 + 0.7, -500, 10, 200); // congested downlink
    expect(Math.abs(sync.offsetMs + 500)).toBeLessThan(0.75);
  });

  it('calls itself settled soon on a quiet path and only after many samples behind heavy jitter', () => {
    let seed = 11;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const quiet = new ClockSync();
    let n = 0;
    while (!quiet.settled && n < 500) exchange(quiet, 1e12 + n++ * 50 + rand(), 0, 0.3 + rand() * 0.1, 0.3 + rand() * 0.1);
    expect(n).toBeLessThan(60);
    const jittery = new ClockSync();
    let m = 0;
    while (!jittery.settled && m < 500) exchange(jittery, 1e12 + m++ * 50 + rand(), 0, 20 + rand() * 30, 20 + rand() * 30);
    expect(m).toBeGreaterThan(150);
  });

  it('is biased by half the asymmetry, which is the theoretical bound', () => {
    const sync = new ClockSync();
    for (let i = 0; i < 20; i++) exchange(sync, 1e12 + i * 40 + 0.5, 0, 30, 10);
    expect(sync.offsetMs).toBeCloseTo(10, 0); // (30 - 10) / 2
  });

  it('forgets samples outside its window so clock drift is followed', () => {
    const sync = new ClockSync({ windowMs: 1000 });
    exchange(sync, 1e12, 100, 5, 5);
    exchange(sync, 1e12 + 5000.5, 110, 20, 20);
    expect(sync.sampleCount).toBe(1);
    expect(sync.offsetMs).toBeCloseTo(110, 0);
  });

  it('rejects impossible exchanges', () => {
    const sync = new ClockSync();
    expect(sync.add(10, 5, 4, 20)).toBeNull();
    expect(sync.add(10, 5, 6, 9)).toBeNull();
    expect(sync.add(NaN, 1, 2, 3)).toBeNull();
    expect(sync.synced).toBe(false);
  });
});

describe('backoff', () => {
  it('grows exponentially to a ceiling and spreads retries with jitter', () => {
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 1)).toBe(250);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 1)).toBe(2000);
    expect(backoffDelay(30, DEFAULT_BACKOFF, () => 1)).toBe(10_000);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(1000);
  });
});
