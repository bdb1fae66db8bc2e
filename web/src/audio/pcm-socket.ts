// A WebSocket that carries live audio to the server: one JSON hello that
// declares the format, then each frame as one binary message of
// little-endian Float32 PCM (never base64).
//
// The hello is written when the first frame after connecting arrives, so it
// can say when that frame's first sample was captured (analysis streams place
// onsets on the room's beat grid with it). Frames wait in a short queue until
// the server accepts the hello, then flow directly. The stream's time is its
// sample count, so frames are never dropped mid-stream: if the network falls
// too far behind, the stream is restarted instead, with a new hello.
// Reconnects by itself with the shared backoff. A link can also die without
// closing (a network switch, a sleeping router): with `silentMs` a socket
// that hears nothing while it streams is given up, and a connection that is
// not accepted in time is retried. A `resume_token` from the server's ready
// goes into the next hello, so the server lets this source take its stream
// back from the socket it may still hold.

import { backoffDelay, DEFAULT_BACKOFF } from '../../../src/client/backoff.ts';
import { FrameBatcher } from './frame-batcher.ts';

export type PcmSocketState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface PcmSocketOptions {
  /** ws:// or wss:// URL of the stream. */
  url: string;
  /** The hello, given the local time (epoch ms) at which the stream's first sample was captured. */
  hello: (firstSampleLocalMs: number) => Record<string, unknown>;
  /** True for the server message that accepts the hello; frames flow after it. */
  isReady: (msg: { type?: unknown }) => boolean;
  onMessage: (msg: { type?: unknown } & Record<string, unknown>) => void;
  onState: (state: PcmSocketState, detail?: string) => void;
  /** Close codes after which reconnecting is pointless (replaced, refused…), with the reason shown. */
  finalCodes?: Record<number, string>;
  /**
   * For servers that answer a streaming source continuously (analysis results
   * come every 50 ms of audio): a link that stays silent this long while
   * audio goes out is dead, though no close came. Unset: only closes count.
   */
  silentMs?: number;
  /**
   * Join captured frames into messages of at least this many samples, for a
   * server that gains nothing from small ones (identification). Unset: each
   * frame is a message, for servers that answer per frame (analysis).
   */
  batchSamples?: number;
}

/** Bytes waiting to be sent beyond which the stream is restarted rather than left to lag further (~5 s of 48 kHz). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** Messages (frames, or batches of them) kept while the hello is in flight; a server this slow to answer gets a fresh connection. */
const MAX_QUEUED_FRAMES = 64;
/** A connection not open and accepted within this is retried (a dead link never fails the handshake). */
const CONNECT_TIMEOUT_MS = 10_000;

export function wsUrl(path: string): string {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

export class PcmSocket {
  /** Samples sent since the current stream began (its clock). */
  samplesSent = 0;
  /** Samples the current stream has taken: sent, waiting for the server's ready, or held for the next batch. */
  samplesTaken = 0;
  /** Local time the current stream's first sample was captured. */
  streamStartLocalMs: number | null = null;
  private ws: WebSocket | null = null;
  private helloSent = false;
  private ready = false;
  private queue: Float32Array<ArrayBuffer>[] = [];
  private attempt = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Local time of the last message from the server on the current socket. */
  private lastHeardMs = 0;
  /** From the last ready: lets the next hello take the stream back from a socket the server still holds. */
  private resumeToken: string | null = null;
  private readonly opts: PcmSocketOptions;
  private readonly batcher: FrameBatcher | null;

  constructor(opts: PcmSocketOptions) {
    this.opts = opts;
    this.batcher = opts.batchSamples === undefined ? null : new FrameBatcher(opts.batchSamples);
    this.open();
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** Hands over one captured frame; false when there is no stream to put it in (connecting, or down). */
  push(frame: Float32Array<ArrayBuffer>, capturedAtLocalMs: number): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (!this.helloSent) {
      this.helloSent = true;
      this.streamStartLocalMs = capturedAtLocalMs;
      const hello = this.opts.hello(capturedAtLocalMs);
      ws.send(JSON.stringify(this.resumeToken ? { ...hello, resume_token: this.resumeToken } : hello));
    }
    this.samplesTaken += frame.length;
    const message = this.batcher ? this.batcher.push(frame) : frame;
    if (!message) return true;
    if (!this.ready) {
      if (this.queue.length >= MAX_QUEUED_FRAMES) return this.restart('the server did not accept the stream in time'), false;
      this.queue.push(message);
      return true;
    }
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) return this.restart('the network cannot keep up with the audio'), false;
    const silentMs = this.opts.silentMs;
    if (silentMs !== undefined && performance.now() - this.lastHeardMs > silentMs) return this.drop(`no answer for ${Math.round(silentMs / 1000)} s`), false;
    this.sendFrame(ws, message);
    return true;
  }

  /** Samples per message from now on (batching sockets only): the server may advise another size as the stream goes on. */
  setBatchSamples(n: number): void {
    if (this.batcher) this.batcher.minSamples = n;
  }

  /** Sends a JSON control message (e.g. `end`). */
  sendJson(msg: Record<string, unknown>): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.clearConnectTimer();
    try {
      this.ws?.close(1000, 'done');
    } catch {
      // already closed
    }
    this.ws = null;
    this.reset();
    this.opts.onState('closed');
  }

  private sendFrame(ws: WebSocket, frame: Float32Array<ArrayBuffer>): void {
    // Float32Array is little-endian on every platform browsers run on.
    ws.send(frame);
    this.samplesSent += frame.length;
  }

  private reset(): void {
    this.helloSent = false;
    this.ready = false;
    this.queue = [];
    this.samplesSent = 0;
    this.samplesTaken = 0;
    this.batcher?.clear();
    this.streamStartLocalMs = null;
  }

  private restart(reason: string): void {
    this.detach();
    this.opts.onState('reconnecting', reason);
    this.open();
  }

  /** Gives up a socket that went silent or never got through, and reconnects with backoff. */
  private drop(reason: string): void {
    this.detach();
    this.opts.onState('reconnecting', reason);
    this.timer = setTimeout(() => this.open(), backoffDelay(this.attempt++, DEFAULT_BACKOFF));
  }

  /** Lets the current socket go without waiting for its close, which a dead link never completes. */
  private detach(): void {
    const ws = this.ws;
    this.ws = null;
    this.clearConnectTimer();
    this.reset();
    try {
      ws?.close(1000, 'restart');
    } catch {
      // already closed
    }
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private open(): void {
    if (this.stopped) return;
    this.opts.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.opts.url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.reset();
    this.clearConnectTimer();
    this.connectTimer = setTimeout(() => this.ws === ws && !this.ready && this.drop('the server did not answer'), CONNECT_TIMEOUT_MS);
    ws.addEventListener('message', (e: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastHeardMs = performance.now();
      if (typeof e.data !== 'string') return;
      let msg: { type?: unknown } & Record<string, unknown>;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (this.helloSent && !this.ready && this.opts.isReady(msg)) {
        this.ready = true;
        this.attempt = 0;
        this.clearConnectTimer();
        this.resumeToken = typeof msg.resume_token === 'string' ? msg.resume_token : null;
        for (const f of this.queue) this.sendFrame(ws, f);
        this.queue = [];
        this.opts.onState('open');
      }
      this.opts.onMessage(msg);
    });
    ws.addEventListener('close', (e: CloseEvent) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.clearConnectTimer();
      this.reset();
      const final = this.opts.finalCodes?.[e.code];
      if (final) {
        this.stopped = true;
        this.opts.onState('closed', e.reason || final);
        return;
      }
      this.opts.onState('reconnecting', e.reason || undefined);
      this.timer = setTimeout(() => this.open(), backoffDelay(this.attempt++, DEFAULT_BACKOFF));
    });
  }
}
