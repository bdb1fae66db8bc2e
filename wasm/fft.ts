import type { KissFFT } from './kissfft.ts';

/**
 * A real FFT plan of fixed size over two WASM heap buffers (an input and an
 * output). The typed-array views are rebuilt only when the heap grows, so a
 * frame costs a copy in and nothing else: no allocation per frame.
 */
abstract class RealFFTPlan {
  readonly size: number;
  readonly bins: number;
  protected readonly kiss: KissFFT;
  protected cfg: number;
  protected readonly inPtr: number;
  protected readonly outPtr: number;
  protected inView!: Float32Array;
  protected outView!: Float32Array;

  constructor(kiss: KissFFT, size: number, inverse: boolean) {
    if (!Number.isInteger(size) || size < 4 || size % 2 !== 0) throw new RangeError(`FFT size must be an even integer >= 4, got ${size}`);
    this.kiss = kiss;
    this.size = size;
    this.bins = size / 2 + 1;
    this.cfg = kiss.fftrAlloc(size, inverse);
    // Forward: reals in, interleaved complex out; inverse: the other way round.
    const inLen = inverse ? this.bins * 2 : size;
    const outLen = inverse ? size : this.bins * 2;
    this.inPtr = kiss.malloc(inLen * 4);
    this.outPtr = kiss.malloc(outLen * 4);
    this.views();
    // malloc does not clear: a caller that fills only part of the input must see zeros in the rest, not an old plan's samples.
    this.inView.fill(0);
  }

  protected views(): void {
    // A heap that grew detached its old buffer, and every view on it reads
    // length 0 then: only that needs new views. (Comparing with
    // `memory.buffer` instead cost a call into the runtime per access, four
    // per analysed hop.)
    if (this.inView !== undefined && this.inView.length !== 0) return;
    const buf = this.kiss.memory.buffer;
    this.inView = new Float32Array(buf, this.inPtr, this.inLength());
    this.outView = new Float32Array(buf, this.outPtr, this.outLength());
  }

  protected abstract inLength(): number;
  protected abstract outLength(): number;

  dispose(): void {
    if (!this.cfg) return;
    this.kiss.free(this.inPtr);
    this.kiss.free(this.outPtr);
    this.kiss.free(this.cfg);
    this.cfg = 0;
  }
}

/** A real forward FFT: fill `input`, call `forward()`, read `spectrum`. */
export class RealFFT extends RealFFTPlan {
  constructor(kiss: KissFFT, size: number) {
    super(kiss, size, false);
  }

  protected inLength(): number {
    return this.size;
  }

  protected outLength(): number {
    return this.bins * 2;
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
}

/** The inverse of RealFFT (unnormalised: the output is `size` times the signal). */
export class RealIFFT extends RealFFTPlan {
  constructor(kiss: KissFFT, size: number) {
    super(kiss, size, true);
  }

  protected inLength(): number {
    return this.bins * 2;
  }

  protected outLength(): number {
    return this.size;
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
}
