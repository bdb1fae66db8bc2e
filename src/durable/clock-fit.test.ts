import { describe, expect, it } from 'vitest';
import { ClockLineFit, lineSampleAt } from './clock-fit.ts';

function lcg(seed: number) {
  return () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
}

describe('clock line fit', () => {
  it('recovers a +200 ppm device rate and position from jittery reports', () => {
    const rand = lcg(3);
    const fit = new ClockLineFit(48_000);
    const rate = 48_000 * (1 + 200e-6);
    const t0 = 1.7e12;
    for (let i = 0; i < 200; i++) {
      const t = t0 + i * 50;
      const jitterMs = (rand() - 0.5) * 4; // ±2 ms callback jitter on the stamp
      fit.add({ serverMs: t + jitterMs, sample: ((t - t0) / 1000) * rate });
    }
    const line = fit.fit()!;
    // 200 reports over 10 s with ±2 ms jitter pin the rate to a few tens of ppm.
    expect(Math.abs((line.rate / 48_000 - 1) * 1e6 - 200)).toBeLessThan(60);
    const t = t0 + 199 * 50;
    const errMs = ((lineSampleAt(line, t) - ((t - t0) / 1000) * rate) / 48_000) * 1000;
    expect(Math.abs(errMs)).toBeLessThan(0.3);
  });

  it('ignores outliers such as a report stamped with a bad offset', () => {
    const fit = new ClockLineFit(48_000);
    const t0 = 1.7e12;
    for (let i = 0; i < 100; i++) {
      const t = t0 + i * 50;
      const bad = i % 17 === 5 ? 40 : 0; // 40 ms off
      fit.add({ serverMs: t + bad, sample: ((t - t0) / 1000) * 48_000 });
    }
    const line = fit.fit()!;
    expect(line.rate).toBeCloseTo(48_000, 0);
    expect(Math.abs(lineSampleAt(line, t0 + 5000) - 5 * 48_000)).toBeLessThan(5);
  });

  it('drops late packets and points outside the window, and needs a few points first', () => {
    const fit = new ClockLineFit(48_000, { windowMs: 1000, minPoints: 4 });
    fit.add({ serverMs: 1000, sample: 0 });
    fit.add({ serverMs: 1100, sample: 4800 });
    fit.add({ serverMs: 1050, sample: 2400 }); // late
    expect(fit.size).toBe(2);
    expect(fit.fit()).toBeNull();
    for (let i = 3; i < 40; i++) fit.add({ serverMs: 1000 + i * 100, sample: i * 4800 });
    expect(fit.size).toBeLessThanOrEqual(11);
    expect(fit.fit()!.rate).toBeCloseTo(48_000, 3);
  });
});
