// The audio device as the agent sees it: a sample counter that advances one
// buffer at a time, with the time each buffer boundary happened. Device APIs
// give that time with the callback (PortAudio's timeInfo, CoreAudio's host
// time, Web Audio's outputTimestamp); `localMs` is on the clock of
// src/client/clock-sync.ts `localNow()`.

export interface BufferReport {
  /** Device sample counter after this buffer. */
  deviceSample: number;
  /** Local time of that buffer boundary, ms. */
  localMs: number;
  /** The buffer's audio (mono), where the source has audio to stream. */
  audio?: Float32Array;
}

export interface DeviceClock {
  readonly name: string;
  readonly sampleRate: number;
  readonly bufferSize: number;
  start(onBuffer: (r: BufferReport) => void): Promise<void>;
  stop(): Promise<void>;
  /** Sources that end (a file) call this once at the end. */
  onEnd?(fn: () => void): void;
}
