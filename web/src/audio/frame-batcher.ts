// Gathers captured frames into larger messages for a server that gains
// nothing from small frames and pays for every message: identification
// matches audio in batches of 0.5 s or 2 s (it says which), while the
// microphone delivers a frame every ~85 ms (which the level meter still wants).

export class FrameBatcher {
  private min = 0;
  private readonly frames: Float32Array[] = [];
  private heldSamples = 0;

  constructor(minSamples: number) {
    this.minSamples = minSamples;
  }

  /** A batch is sent once this many samples are held; a change applies from the next frame. */
  get minSamples(): number {
    return this.min;
  }

  set minSamples(n: number) {
    if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`a batch needs a positive whole number of samples, got ${n}`);
    this.min = n;
  }

  /** Adds a frame; returns the frames held, joined in order, once they reach `minSamples`, else null. */
  push(frame: Float32Array): Float32Array<ArrayBuffer> | null {
    if (frame.length === 0) return null;
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
    return samples;
  }

  /** Samples held for the next batch. */
  get held(): number {
    return this.heldSamples;
  }

  /** Forgets the frames held (a stopped or restarted stream). */
  clear(): void {
    this.frames.length = 0;
    this.heldSamples = 0;
  }
}
