// Runs on the audio thread: collects the microphone's input into fixed-size
// Float32 frames and transfers each to the page, which sends it as one binary
// WebSocket message. Mono: channels are averaged.

// The AudioWorklet global scope is not in TypeScript's DOM library; these are
// the three names this file uses from it.
declare const sampleRate: number;
declare function registerProcessor(name: string, ctor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: unknown);
}

interface CaptureOptions {
  processorOptions?: { frameSize?: number };
}

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly size: number;
  private frame: Float32Array;
  private filled = 0;

  constructor(options: CaptureOptions) {
    super(options);
    // About 40 ms at 48 kHz: small enough for a live tuner, big enough to keep messages few.
    this.size = options.processorOptions?.frameSize ?? 2048;
    this.frame = new Float32Array(this.size);
    this.port.postMessage({ type: 'ready', sampleRate, frameSize: this.size });
  }

  process(inputs: Float32Array[][]): boolean {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    const k = channels.length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += channels[c][i];
      this.frame[this.filled++] = s / k;
      if (this.filled === this.size) {
        // Transfer, not copy; a fresh buffer takes its place (the sent one is detached, length 0).
        this.port.postMessage(this.frame, [this.frame.buffer]);
        this.frame = new Float32Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('roomtone-capture', CaptureProcessor);
