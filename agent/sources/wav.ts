import type { BufferReport, DeviceClock } from './device-clock.ts';
import type { DecodedWav } from '../wav.ts';
import { localNow } from '../../src/client/clock-sync.ts';

/**
 * Plays a decoded WAV file in real time as the device: the host clock at the
 * file's sample rate, in buffer steps, with each buffer's audio attached so it
 * can be streamed to analysis. Ends at the end of the file.
 */
export class WavDeviceClock implements DeviceClock {
  readonly name: string;
  readonly sampleRate: number;
  readonly bufferSize: number;
  private readonly samples: Float32Array;
  private startMs = 0;
  private buffers = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private endListeners: Array<() => void> = [];

  constructor(name: string, wav: DecodedWav, bufferSize: number) {
    this.name = name;
    this.sampleRate = wav.sampleRate;
    this.bufferSize = bufferSize;
    this.samples = wav.samples;
  }

  onEnd(fn: () => void): void {
    this.endListeners.push(fn);
  }

  get durationS(): number {
    return this.samples.length / this.sampleRate;
  }

  async start(onBuffer: (r: BufferReport) => void): Promise<void> {
    this.startMs = localNow();
    const perMs = this.sampleRate / 1000;
    const loop = () => {
      const now = localNow();
      for (;;) {
        const from = this.buffers * this.bufferSize;
        if (from >= this.samples.length) {
          this.timer = null;
          for (const fn of this.endListeners) fn();
          return;
        }
        const to = Math.min(this.samples.length, from + this.bufferSize);
        const at = this.startMs + to / perMs;
        if (at > now) break;
        this.buffers++;
        onBuffer({ deviceSample: to, localMs: at, audio: this.samples.subarray(from, to) });
      }
      const next = this.startMs + Math.min(this.samples.length, (this.buffers + 1) * this.bufferSize) / perMs;
      this.timer = setTimeout(loop, Math.max(1, next - localNow()));
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
