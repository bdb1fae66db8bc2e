import type { KissFFT } from './kissfft.ts';

/**
 * A real forward FFT of fixed size over WASM memory. `input` and `spectrum`
 * are views into the WASM heap, rebuilt only when the heap grows, so a frame
 * costs a copy in and nothing else: no allocation per frame.
 */
export class RealFFT {
  readonly size: number;
  readonly bins: number;
  private readonly kiss: KissFFT;
  private cfg: number;
  private inPtr: number;
  private outPtr: number;
  private buffer: ArrayBufferLike | null = null;
  private inView!: Float32Array;
  private outView!: Float32Array;

  constructor(kiss: KissFFT, size: number) {
    if (!Number.isInteger(size) || size < 4 || size % 2 !== 0) throw new RangeError(`FFT size must be an even integer >= 4, got ${size}`);
    this.kiss = kiss;
    this.size = size;
    this.bins = size / 2 + 1;
    this.cfg = kiss.fftrAlloc(size, false);
    this.inPtr = kiss.malloc(size * 4);
    this.outPtr = kiss.malloc(this.bins * 8);
    this.views();
  }

  private views(): void {
    const buf = this.kiss.memory.buffer;
    if (buf === this.buffer) return;
    this.buffer = buf;
    this.inView = new Float32Array(buf, this.inPtr, this.size);
    this.outView = new Float32Array(buf, this.outPtr, this.bins * 2);
  }

  /** The time-domain input to fill before `forward()`. */
  get input(): Float32Array {
    this.views();
    return this.inView;
  }

  /** Interleaved re, im for bins 0..size/2, valid until the next `forward()`. */
  get spectrum(): Float32Array {
    this.views();
    return this.outView;
  }

  forward(): Float32Array {
    this.kiss.fftr(this.cfg, this.inPtr, this.outPtr);
    return this.spectrum;
  }

  dispose(): void {
    if (!this.cfg) return;
    this.kiss.free(this.inPtr);
    this.kiss.free(this.outPtr);
    this.kiss.free(this.cfg);
    this.cfg = 0;
  }
}

/** The inverse of RealFFT (unnormalised: the output is `size` times the signal). */
export class RealIFFT {
  readonly size: number;
  readonly bins: number;
  private readonly kiss: KissFFT;
  private cfg: number;
  private inPtr: number;
  private outPtr: number;
  private buffer: ArrayBufferLike | null = null;
  private inView!: Float32Array;
  private outView!: Float32Array;

  constructor(kiss: KissFFT, size: number) {
    if (!Number.isInteger(size) || size < 4 || size % 2 !== 0) throw new RangeError(`FFT size must be an even integer >= 4, got ${size}`);
    this.kiss = kiss;
    this.size = size;
    this.bins = size / 2 + 1;
    this.cfg = kiss.fftrAlloc(size, true);
    this.inPtr = kiss.malloc(this.bins * 8);
    this.outPtr = kiss.malloc(size * 4);
    this.views();
  }

  private views(): void {
    const buf = this.kiss.memory.buffer;
    if (buf === this.buffer) return;
    this.buffer = buf;
    this.inView = new Float32Array(buf, this.inPtr, this.bins * 2);
    this.outView = new Float32Array(buf, this.outPtr, this.size);
  }

  /** Interleaved re, im to fill before `inverse()`. */
  get spectrum(): Float32Array {
    this.views();
    return this.inView;
  }

  get output(): Float32Array {
    this.views();
    return this.outView;
  }

  inverse(): Float32Array {
    this.kiss.fftri(this.cfg, this.inPtr, this.outPtr);
    return this.output;
  }

  dispose(): void {
    if (!this.cfg) return;
    this.kiss.free(this.inPtr);
    this.kiss.free(this.outPtr);
    this.kiss.free(this.cfg);
    this.cfg = 0;
  }
}
