// Shared by the catalog and match tests in workerd: synthetic tracks, uploads,
// and a client socket for the match stream.
import { api } from './helpers.ts';
import { encodeWav } from '../../wasm/wav.ts';
import { synthMusic } from '../../wasm/fingerprint/test-signals.ts';
import type { IngestAccepted, MatchServerMessage } from '../../src/protocol/index.ts';

export const ADMIN = { authorization: 'Bearer test-admin-token' };
export const RATE = 22050;

export function track(seed: number, seconds = 20): Float32Array {
  return synthMusic(seed, seconds, RATE, 3);
}

export async function uploadWav(samples: Float32Array, title: string, opts: { artist?: string; wait?: boolean; rate?: number } = {}): Promise<Response> {
  const q = new URLSearchParams({ title });
  if (opts.artist) q.set('artist', opts.artist);
  if (opts.wait !== false) q.set('wait', '1');
  return api(`/api/v1/catalog/tracks?${q}`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: encodeWav(samples, opts.rate ?? RATE) as Uint8Array<ArrayBuffer> });
}

export async function ingest(samples: Float32Array, title: string, artist?: string): Promise<IngestAccepted> {
  const res = await uploadWav(samples, title, { artist });
  if (res.status !== 201) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A match-stream client that queues what arrives, so tests can await the next message of a type. */
export class MatchSocket {
  readonly ws: WebSocket;
  readonly messages: MatchServerMessage[] = [];
  private queue: MatchServerMessage[] = [];
  private waiters: Array<() => void> = [];
  closed: { code: number; reason: string } | null = null;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(e.data as string) as MatchServerMessage;
      this.messages.push(m);
      this.queue.push(m);
      this.wake();
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' || msg instanceof ArrayBuffer ? msg : JSON.stringify(msg));
  }

  /** Sends `samples` in frames of `chunk` samples as f32 or s16. */
  sendAudio(samples: Float32Array, format: 'f32' | 's16' = 'f32', chunk = 2205): void {
    for (let o = 0; o < samples.length; o += chunk) {
      const part = samples.subarray(o, Math.min(samples.length, o + chunk));
      if (format === 'f32') {
        this.ws.send(part.slice().buffer);
      } else {
        const s = new Int16Array(part.length);
        for (let i = 0; i < part.length; i++) s[i] = Math.max(-32768, Math.min(32767, Math.round(part[i] * 32767)));
        this.ws.send(s.buffer);
      }
    }
  }

  async next<T extends MatchServerMessage['type']>(type: T, timeoutMs = 8000): Promise<Extract<MatchServerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => m.type === type);
      if (i >= 0) return this.queue.splice(i, 1)[0] as Extract<MatchServerMessage, { type: T }>;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}; have ${this.queue.map((m) => m.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async closedWith(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  close() {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // already closed
    }
  }
}

export async function openMatch(clientId: string): Promise<MatchSocket> {
  const res = await api(`/api/v1/match/${clientId}`, { headers: { upgrade: 'websocket' } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  return new MatchSocket(res.webSocket);
}
