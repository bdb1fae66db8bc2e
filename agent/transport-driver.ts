// The one interface between roomtone and whatever owns the transport: a DAW
// plug-in, a hardware controller, or DeviceTransport below (a software
// transport over an audio device clock, used by the sim, wav and device
// sources). To drive a room from a real DAW, implement TransportDriver with
// the DAW's own play state and sample position; the agent does the rest.

import type { TransportStatus } from '../src/protocol/index.ts';
import type { BufferReport, DeviceClock } from './sources/device-clock.ts';

export interface DriverState {
  status: TransportStatus;
  /** Timeline position (samples) at `localMs`. */
  sample: number;
  localMs: number;
  bpm: number;
  beats_per_bar: number;
}

/** Room commands in the driver's terms: absolute samples, and local time for starts. */
export type DriverCommand =
  | { op: 'play'; atLocalMs?: number }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'stop' }
  | { op: 'seek'; samples: number }
  | { op: 'tempo'; bpm: number; beats_per_bar?: number };

export interface TransportDriver {
  readonly name: string;
  readonly sampleRate: number;
  /**
   * True when the driver has no transport state of its own to defend (a
   * software transport): on its first attach it takes the room's position,
   * so a restarted agent resumes without a jump. A DAW driver says false: the
   * DAW's state is the truth.
   */
  readonly followsRoomOnStart: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  state(localMs?: number): DriverState;
  /** The newest audio-clock reading as a timeline position, or null while the transport is not moving. */
  clock(): { sample: number; localMs: number } | null;
  /** Applies a command; resolves with the state at the instant it takes effect. */
  apply(cmd: DriverCommand): Promise<DriverState>;
  /** Changes the driver makes by itself: the DAW's own buttons, or the end of a file. */
  onChange(fn: (s: DriverState, cause: 'local' | 'end') => void): void;
  /** Audio from the device, for streaming to analysis (sources that have audio); `localMs` is the time of the buffer's end. */
  onAudio?(fn: (audio: Float32Array, deviceSample: number, localMs: number) => void): void;
}

/**
 * A DAW-like transport over an audio device clock: the device counter runs all
 * the time (as hardware does), and the transport maps it to a timeline
 * position while playing.
 */
export class DeviceTransport implements TransportDriver {
  readonly device: DeviceClock;
  readonly followsRoomOnStart = true;
  private status: TransportStatus = 'stopped';
  private bpm: number;
  private beatsPerBar: number;
  /** While playing: the timeline is at `tlStart` when the device is at `devStart`. */
  private tlStart = 0;
  private devStart = 0;
  /** While paused or stopped: where the timeline rests. */
  private tlHold = 0;
  private last: BufferReport | null = null;
  private changeListeners: Array<(s: DriverState, cause: 'local' | 'end') => void> = [];
  private audioListeners: Array<(audio: Float32Array, deviceSample: number, localMs: number) => void> = [];

  constructor(device: DeviceClock, opts: { bpm?: number; beats_per_bar?: number } = {}) {
    this.device = device;
    this.bpm = opts.bpm ?? 120;
    this.beatsPerBar = opts.beats_per_bar ?? 4;
    device.onEnd?.(() => {
      const s = this.halt('stopped', this.timelineAt(this.last?.localMs ?? performance.timeOrigin + performance.now()));
      for (const fn of this.changeListeners) fn(s, 'end');
    });
  }

  get name(): string {
    return this.device.name;
  }

  get sampleRate(): number {
    return this.device.sampleRate;
  }

  async start(): Promise<void> {
    await this.device.start((r) => {
      this.last = r;
      if (r.audio) for (const fn of this.audioListeners) fn(r.audio, r.deviceSample, r.localMs);
    });
    // Wait for the first buffer so positions have a reference.
    const deadline = Date.now() + 2000;
    while (!this.last && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
  }

  async stop(): Promise<void> {
    await this.device.stop();
  }

  onChange(fn: (s: DriverState, cause: 'local' | 'end') => void): void {
    this.changeListeners.push(fn);
  }

  onAudio(fn: (audio: Float32Array, deviceSample: number, localMs: number) => void): void {
    this.audioListeners.push(fn);
  }

  /** The device counter at a local instant, extrapolated from the newest buffer. */
  private deviceAt(localMs: number): number {
    if (!this.last) return 0;
    return this.last.deviceSample + ((localMs - this.last.localMs) * this.device.sampleRate) / 1000;
  }

  /** Maps a device counter to the timeline: with a simulated device's true counter, the true playhead. */
  timelineFromDevice(deviceSample: number): number {
    if (this.status !== 'playing') return this.tlHold;
    return this.tlStart + Math.max(0, deviceSample - this.devStart);
  }

  private timelineAt(localMs: number): number {
    if (this.status !== 'playing') return this.tlHold;
    return this.tlStart + Math.max(0, this.deviceAt(localMs) - this.devStart);
  }

  state(localMs = performance.timeOrigin + performance.now()): DriverState {
    return { status: this.status, sample: this.timelineAt(localMs), localMs, bpm: this.bpm, beats_per_bar: this.beatsPerBar };
  }

  clock(): { sample: number; localMs: number } | null {
    if (this.status !== 'playing' || !this.last) return null;
    if (this.last.deviceSample < this.devStart) return null; // a scheduled start has not come yet
    return { sample: this.tlStart + (this.last.deviceSample - this.devStart), localMs: this.last.localMs };
  }

  private halt(status: 'paused' | 'stopped', at: number): DriverState {
    const now = performance.timeOrigin + performance.now();
    this.tlHold = at;
    this.status = status;
    return this.state(now);
  }

  async apply(cmd: DriverCommand): Promise<DriverState> {
    const now = performance.timeOrigin + performance.now();
    switch (cmd.op) {
      case 'play':
      case 'resume': {
        if (this.status === 'playing') return this.state(now);
        const at = cmd.op === 'play' && cmd.atLocalMs !== undefined ? cmd.atLocalMs : now;
        this.tlStart = this.tlHold;
        this.devStart = this.deviceAt(at);
        this.status = 'playing';
        return { status: 'playing', sample: this.tlStart, localMs: at, bpm: this.bpm, beats_per_bar: this.beatsPerBar };
      }
      case 'pause':
        if (this.status !== 'playing') return this.state(now);
        return this.halt('paused', this.timelineAt(now));
      case 'stop':
        return this.halt('stopped', 0);
      case 'seek': {
        if (this.status === 'playing') {
          const pending = this.deviceAt(now) < this.devStart;
          this.tlStart = cmd.samples;
          if (!pending) this.devStart = this.deviceAt(now);
          return pending
            ? { status: 'playing', sample: this.tlStart, localMs: now + ((this.devStart - this.deviceAt(now)) * 1000) / this.sampleRate, bpm: this.bpm, beats_per_bar: this.beatsPerBar }
            : this.state(now);
        }
        this.tlHold = cmd.samples;
        return this.state(now);
      }
      case 'tempo':
        this.bpm = cmd.bpm;
        if (cmd.beats_per_bar !== undefined) this.beatsPerBar = cmd.beats_per_bar;
        return this.state(now);
    }
  }
}
