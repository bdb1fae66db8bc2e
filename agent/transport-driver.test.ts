import { describe, expect, it } from 'vitest';
import { DeviceTransport } from './transport-driver.ts';
import type { BufferReport, DeviceClock } from './sources/device-clock.ts';
import { SimDeviceClock } from './sources/sim.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A device clock stepped by hand: each `tick(n)` completes buffer n (10 ms
 * each) at T0 + 10n ms of local time. T0 is now, because commands given
 * without an instant take effect at the real local time.
 */
const T0 = performance.timeOrigin + performance.now();
class SteppedClock implements DeviceClock {
  readonly name = 'stepped';
  readonly sampleRate = 48_000;
  readonly bufferSize = 480; // 10 ms
  private emit: ((r: BufferReport) => void) | null = null;
  private counter = 0;
  async start(onBuffer: (r: BufferReport) => void) {
    this.emit = onBuffer;
    this.emit({ deviceSample: 0, localMs: T0 });
  }
  async stop() {}
  /** Completes buffers up to number n. */
  tick(n: number) {
    while (this.counter < n * this.bufferSize) {
      this.counter += this.bufferSize;
      this.emit!({ deviceSample: this.counter, localMs: T0 + (this.counter / this.sampleRate) * 1000 });
    }
  }
}

describe('DeviceTransport', () => {
  it('maps the running device counter to a timeline that plays, pauses, seeks and stops', async () => {
    // A real (simulated) device in real time: commands without an instant take effect now.
    const sim = new SimDeviceClock({ sampleRate: 48_000, bufferSize: 240, driftPpm: 0, jitterMs: 0 });
    const t = new DeviceTransport(sim);
    await t.start();
    expect(t.clock()).toBeNull(); // stopped: nothing to report
    const started = await t.apply({ op: 'play' });
    expect(started).toMatchObject({ status: 'playing', sample: 0 });
    await sleep(300);
    const c = t.clock()!;
    // The newest buffer's position matches the time since the start, within a buffer and timer slack.
    expect(Math.abs(c.sample - ((c.localMs - started.localMs) / 1000) * 48_000)).toBeLessThan(48 * 12);

    const paused = await t.apply({ op: 'pause' });
    expect(paused.status).toBe('paused');
    await sleep(50);
    expect(t.state().sample).toBe(paused.sample);
    expect(t.clock()).toBeNull();

    await t.apply({ op: 'seek', samples: 96_000 });
    expect(t.state().sample).toBe(96_000);
    const resumed = await t.apply({ op: 'resume' });
    expect(resumed.sample).toBe(96_000);
    await sleep(100);
    const later = t.clock()!;
    expect(later.sample).toBeGreaterThan(96_000);
    expect(Math.abs(later.sample - 96_000 - ((later.localMs - resumed.localMs) / 1000) * 48_000)).toBeLessThan(48 * 12);

    await t.apply({ op: 'tempo', bpm: 90, beats_per_bar: 3 });
    expect(t.state()).toMatchObject({ bpm: 90, beats_per_bar: 3 });
    const stopped = await t.apply({ op: 'stop' });
    expect(stopped).toMatchObject({ status: 'stopped', sample: 0 });
    await t.stop();
  });

  it('holds a scheduled start until its instant, then counts from it', async () => {
    const clock = new SteppedClock();
    const t = new DeviceTransport(clock);
    await t.start();
    await t.apply({ op: 'seek', samples: 1000 });
    await t.apply({ op: 'play', atLocalMs: T0 + 100 });
    clock.tick(5);
    expect(t.clock()).toBeNull(); // before the start
    clock.tick(20);
    expect(t.clock()!.sample).toBeCloseTo(1000 + 48 * 100, 6);
  });
});

describe('SimDeviceClock', () => {
  it('runs its crystal off the host clock by the configured drift', () => {
    const sim = new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 200, jitterMs: 0 });
    // Before start the reference is 0: the truth grows at the drifted rate.
    expect(sim.truth(10_000) / 10 / 48_000 - 1).toBeCloseTo(200e-6, 9);
  });

  it('refuses impossible settings', () => {
    expect(() => new SimDeviceClock({ sampleRate: 1000, bufferSize: 256, driftPpm: 0, jitterMs: 0 })).toThrow(/sample rate/);
    expect(() => new SimDeviceClock({ sampleRate: 48_000, bufferSize: 3, driftPpm: 0, jitterMs: 0 })).toThrow(/buffer/);
    expect(() => new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 1e6, jitterMs: 0 })).toThrow(/drift/);
    expect(() => new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 0, jitterMs: -1 })).toThrow(/jitter/);
  });
});
