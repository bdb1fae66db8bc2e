// The microphone as a stream of mono Float32 frames: getUserMedia, an
// AudioContext, and the capture worklet (capture-worklet.ts) on the audio
// thread. Browser processing (echo cancellation, noise suppression, gain
// control) is switched off: it would bend the pitch, onsets and fingerprints
// the server computes.

import { localNow } from '../../../src/client/clock-sync.ts';

export const WORKLET_URL = '/assets/capture-worklet.js';

export class MicError extends Error {
  readonly code: 'denied' | 'no_device' | 'insecure' | 'unsupported' | 'busy' | 'failed';
  constructor(code: MicError['code'], message: string) {
    super(message);
    this.name = 'MicError';
    this.code = code;
  }
}

export interface MicOptions {
  /** Samples per frame delivered to `onFrame`. */
  frameSize?: number;
  /** A frame and the local time (epoch ms) its first sample was captured. */
  onFrame: (frame: Float32Array<ArrayBuffer>, capturedAtLocalMs: number) => void;
}

/** Turns what getUserMedia throws into something a person can act on. */
export function micError(e: unknown): MicError {
  const name = e instanceof DOMException || e instanceof Error ? e.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return new MicError('denied', 'Microphone access was denied. Allow it for this site in the browser (the icon in the address bar) and try again.');
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return new MicError('no_device', 'No microphone was found. Connect one and try again.');
    case 'NotReadableError':
    case 'TrackStartError':
      return new MicError('busy', 'The microphone is in use by another application, or the system blocked it.');
    case 'SecurityError':
      return new MicError('insecure', 'The microphone needs a secure page (https).');
    default:
      return new MicError('failed', `Could not start the microphone: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export class Mic {
  readonly context: AudioContext;
  readonly sampleRate: number;
  private readonly stream: MediaStream;
  private readonly node: AudioWorkletNode;
  private closed = false;

  private constructor(context: AudioContext, stream: MediaStream, node: AudioWorkletNode) {
    this.context = context;
    this.stream = stream;
    this.node = node;
    this.sampleRate = context.sampleRate;
  }

  /** Must run from a user gesture (a click), or the browser keeps the audio context suspended. */
  static async open(opts: MicOptions): Promise<Mic> {
    if (!window.isSecureContext) throw new MicError('insecure', 'The microphone needs a secure page: open this site over https (or on localhost).');
    if (!navigator.mediaDevices?.getUserMedia || typeof AudioWorkletNode === 'undefined') {
      throw new MicError('unsupported', 'This browser cannot capture audio here (no getUserMedia or AudioWorklet).');
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        video: false,
      });
    } catch (e) {
      throw micError(e);
    }
    const context = new AudioContext({ latencyHint: 'interactive' });
    try {
      await context.audioWorklet.addModule(WORKLET_URL);
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, 'roomtone-capture', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { frameSize: opts.frameSize ?? 2048 },
      });
      node.port.onmessage = (e: MessageEvent) => {
        // The worklet transfers a plain ArrayBuffer with each frame, as soon as its last sample is in.
        if (!(e.data instanceof Float32Array)) return;
        const frame = e.data as Float32Array<ArrayBuffer>;
        opts.onFrame(frame, localNow() - (frame.length / context.sampleRate) * 1000);
      };
      // The graph is pulled from the destination: a muted path keeps the worklet running without echoing the mic.
      const mute = context.createGain();
      mute.gain.value = 0;
      source.connect(node).connect(mute).connect(context.destination);
      await context.resume();
      return new Mic(context, stream, node);
    } catch (e) {
      for (const t of stream.getTracks()) t.stop();
      await context.close().catch(() => undefined);
      throw e instanceof MicError ? e : new MicError('failed', `Could not start audio capture: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Called when the device goes away (unplugged, permission revoked). */
  onEnded(fn: () => void): void {
    for (const t of this.stream.getAudioTracks()) t.addEventListener('ended', fn, { once: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.node.port.onmessage = null;
    this.node.disconnect();
    for (const t of this.stream.getTracks()) t.stop();
    await this.context.close().catch(() => undefined);
  }
}

/** Level of a frame in dBFS (RMS), floored at -100. */
export function rmsDb(frame: Float32Array): number {
  let s = 0;
  for (let i = 0; i < frame.length; i++) s += frame[i] * frame[i];
  const rms = Math.sqrt(s / Math.max(1, frame.length));
  return rms > 1e-5 ? 20 * Math.log10(rms) : -100;
}
