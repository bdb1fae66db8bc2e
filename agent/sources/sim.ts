import type { BufferReport, DeviceClock } from './device-clock.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import { seededRandom } from '../../wasm/random.ts';

export interface SimOptions {
  sampleRate: number;
  bufferSize: number;
  /** Crystal error: the device runs this many parts per million fast (+) or slow (−) against the host clock. */
  driftPpm: number;
  /** Callback jitter: each buffer's timestamp is off by up to ± this many ms. */
  jitterMs: number;
  /** Seeded randomness, for reproducible runs. */
  seed?: number;
}

/**
 * A virtual audio device: buffers complete at the rate of a crystal that is
 * `driftPpm` off, and each callback's timestamp carries `jitterMs` of jitter,
 * as a real driver's does. It also knows its own truth, which a benchmark
 * needs and real hardware never tells.
 */
export class SimDeviceClock implements DeviceClock {
  readonly name = 'sim';
  readonly sampleRate: number;
  readonly bufferSize: number;
  readonly driftPpm: number;
  readonly jitterMs: number;
  private startMs = 0;
  private buffers = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private rand: () => number;

  constructor(opts: SimOptions) {
    if (!(opts.sampleRate >= 8000 && opts.sampleRate <= 192_000)) throw new RangeError('sample rate must be 8000–192000 Hz');
    if (!(Number.isInteger(opts.bufferSize) && opts.bufferSize >= 16 && opts.bufferSize <= 16384)) throw new RangeError('buffer must be 16–16384 samples');
    if (!(Math.abs(opts.driftPpm) <= 10_000)) throw new RangeError('drift must be within ±10000 ppm');
    if (!(opts.jitterMs >= 0 && opts.jitterMs <= 100)) throw new RangeError('jitter must be 0–100 ms');
    this.sampleRate = opts.sampleRate;
    this.bufferSize = opts.bufferSize;
    this.driftPpm = opts.driftPpm;
    this.jitterMs = opts.jitterMs;
    this.rand = seededRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  /** Samples per millisecond of host time. */
  private get ratePerMs(): number {
    return (this.sampleRate * (1 + this.driftPpm * 1e-6)) / 1000;
  }

  /** The device's exact sample counter at a local instant (continuous, not in buffer steps). */
  truth(localMs: number): number {
    return Math.max(0, (localMs - this.startMs) * this.ratePerMs);
  }

  async start(onBuffer: (r: BufferReport) => void): Promise<void> {
    this.startMs = localNow();
    this.buffers = 0;
    // Each callback happens at its jittered time, as a driver's would; the
    // jitter of the next one is drawn once so waiting does not redraw it.
    let nextStamp = this.stampOf(1);
    const loop = () => {
      const now = localNow();
      while (nextStamp <= now) {
        this.buffers++;
        onBuffer({ deviceSample: this.buffers * this.bufferSize, localMs: nextStamp });
        nextStamp = Math.max(nextStamp, this.stampOf(this.buffers + 1));
      }
      this.timer = setTimeout(loop, Math.max(1, nextStamp - localNow()));
    };
    this.timer = setTimeout(loop, 0);
  }

  private stampOf(buffer: number): number {
    const ideal = this.startMs + (buffer * this.bufferSize) / this.ratePerMs;
    return ideal + (this.rand() * 2 - 1) * this.jitterMs;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
