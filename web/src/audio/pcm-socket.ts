// A WebSocket that carries live audio to the server: one JSON hello that
// declares the format, then each frame as one binary message of
// little-endian Float32 PCM (never base64). Reconnects by itself with the
// shared backoff, sending the hello again; frames captured while the socket
// is down are dropped, since live analysis wants the present, not a backlog.

import { backoffDelay, DEFAULT_BACKOFF } from '../../../src/client/backoff.ts';

export type PcmSocketState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface PcmSocketOptions {
  /** ws:// or wss:// URL of the stream. */
  url: string;
  hello: Record<string, unknown>;
  /** True for the server message that accepts the hello; frames flow after it. */
  isReady: (msg: { type?: unknown }) => boolean;
  onMessage: (msg: { type?: unknown } & Record<string, unknown>) => void;
  onState: (state: PcmSocketState, detail?: string) => void;
  /** Close codes after which reconnecting is pointless (replaced, refused…), with the reason shown. */
  finalCodes?: Record<number, string>;
}

/** More than this many bytes waiting in the socket means the network cannot keep up: drop rather than queue. */
const MAX_BUFFERED_BYTES = 1 << 20;

export function wsUrl(path: string): string {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

export class PcmSocket {
  /** Frames sent since the last (re)connection was accepted. */
  framesSent = 0;
  framesDropped = 0;
  private ws: WebSocket | null = null;
  private ready = false;
  private attempt = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly opts: PcmSocketOptions;

  constructor(opts: PcmSocketOptions) {
    this.opts = opts;
    this.open();
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** Sends one frame as binary; false when it had to be dropped. */
  send(frame: Float32Array<ArrayBuffer>): boolean {
    const ws = this.ws;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.framesDropped++;
      return false;
    }
    // Float32Array is little-endian on every platform browsers run on.
    ws.send(frame);
    this.framesSent++;
    return true;
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
    try {
      this.ws?.close(1000, 'done');
    } catch {
      // already closed
    }
    this.ws = null;
    this.ready = false;
    this.opts.onState('closed');
  }

  private open(): void {
    if (this.stopped) return;
    this.opts.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.opts.url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.ready = false;
    ws.addEventListener('open', () => ws.send(JSON.stringify(this.opts.hello)));
    ws.addEventListener('message', (e: MessageEvent) => {
      if (typeof e.data !== 'string') return;
      let msg: { type?: unknown } & Record<string, unknown>;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!this.ready && this.opts.isReady(msg)) {
        this.ready = true;
        this.attempt = 0;
        this.framesSent = 0;
        this.opts.onState('open');
      }
      this.opts.onMessage(msg);
    });
    ws.addEventListener('close', (e: CloseEvent) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.ready = false;
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
