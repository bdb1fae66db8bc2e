// Gathers captured frames into larger ones for a server that gains nothing
// from small frames and pays for every message: identification matches
// audio in batches of at least 0.5 s, while the microphone delivers a frame
// every ~85 ms (which the level meter still wants).

export interface Batch {
  samples: Float32Array<ArrayBuffer>;
  /** Local time (epoch ms) its first sample was captured. */
  capturedAtLocalMs: number;
}

export class FrameBatcher {
  readonly minSamples: number;
  private frames: Float32Array[] = [];
  private heldSamples = 0;
  private firstAtMs = 0;

  constructor(minSamples: number) {
    if (!(Number.isInteger(minSamples) && minSamples > 0)) throw new RangeError(`a batch needs a positive whole number of samples, got ${minSamples}`);
    this.minSamples = minSamples;
  }

  /** Adds a frame; returns a batch of whole frames once they hold at least `minSamples`, else null. */
  push(frame: Float32Array, capturedAtLocalMs: number): Batch | null {
    if (frame.length === 0) return null;
    if (this.heldSamples === 0) this.firstAtMs = capturedAtLocalMs;
    this.frames.push(frame);
    this.heldSamples += frame.length;
    if (this.heldSamples < this.minSamples) return null;
    const samples = new Float32Array(this.heldSamples);
    let at = 0;
    for (const f of this.frames) {
      samples.set(f, at);
      at += f.length;
    }
    this.clear();
    return { samples, capturedAtLocalMs: this.firstAtMs };
  }

  /** Samples held for the next batch. */
  get held(): number {
    return this.heldSamples;
  }

  /** Forgets the frames held (a stopped or restarted stream). */
  clear(): void {
    this.frames = [];
    this.heldSamples = 0;
  }
}
