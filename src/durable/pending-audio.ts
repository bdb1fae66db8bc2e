// The audio a match stream has received and not yet handed to its matcher.
// Frames wait here until they make a batch; a batch is formed when the
// matcher is free, not when frames arrive, so a client ahead of real time
// has its audio matched in a few long batches (each one round trip to every
// catalog shard) instead of one short batch per threshold crossed.

/**
 * The most audio one batch takes when more waits: `npx roomtone identify`
 * sends a clip at once, and four 4 s batches cost a tenth of the round trips
 * of twenty 0.5 s ones. Bounded so a batch's joined copy stays small at any
 * sample rate (3 MB at 192 kHz) and its synchronous matching short.
 */
export const MAX_BATCH_S = 4;

export interface Batch {
  samples: Float32Array;
  seconds: number;
}

export class PendingAudio {
  readonly sampleRate: number;
  private frames: Float32Array[] = [];
  private samples = 0;
  /** Set by `drain` (the stream's `end`): whatever waits is due, however short. */
  private draining = false;

  constructor(sampleRate: number) {
    if (!(sampleRate > 0)) throw new RangeError(`sample rate must be positive, got ${sampleRate}`);
    this.sampleRate = sampleRate;
  }

  /** Seconds of audio waiting. */
  get seconds(): number {
    return this.samples / this.sampleRate;
  }

  add(frame: Float32Array): void {
    if (frame.length === 0) return;
    this.frames.push(frame);
    this.samples += frame.length;
  }

  /** Makes whatever waits due, however short, until it has been taken. */
  drain(): void {
    this.draining = this.samples > 0;
  }

  /** Whether a batch is due: `batchS` seconds of audio wait, or any at all while draining. */
  due(batchS: number): boolean {
    return this.samples > 0 && (this.draining || this.samples >= Math.round(batchS * this.sampleRate));
  }

  /**
   * Takes the oldest frames, whole, up to MAX_BATCH_S of audio (always at
   * least one frame), joined into one array. Draining ends once nothing waits.
   */
  take(): Batch {
    const limit = Math.round(MAX_BATCH_S * this.sampleRate);
    let n = 0;
    let length = 0;
    while (n < this.frames.length && (n === 0 || length + this.frames[n].length <= limit)) length += this.frames[n++].length;
    const taken = this.frames.splice(0, n);
    this.samples -= length;
    if (this.samples === 0) this.draining = false;
    const seconds = length / this.sampleRate;
    if (taken.length === 1) return { samples: taken[0], seconds };
    const samples = new Float32Array(length);
    let at = 0;
    for (const f of taken) {
      samples.set(f, at);
      at += f.length;
    }
    return { samples, seconds };
  }
}
