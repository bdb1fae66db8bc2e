// Shared by the catalog and match tests in workerd: synthetic tracks, uploads,
// and a client socket for the match stream.
import { api, TestSocket } from './helpers.ts';
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
export class MatchSocket extends TestSocket<MatchServerMessage> {
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

  /** Match decisions take seconds of audio: a longer default wait than room messages. */
  override next<T extends MatchServerMessage['type']>(type: T, timeoutMs = 8000): Promise<Extract<MatchServerMessage, { type: T }>> {
    return super.next(type, timeoutMs);
  }
}

export async function openMatch(clientId: string): Promise<MatchSocket> {
  const res = await api(`/api/v1/match/${clientId}`, { headers: { upgrade: 'websocket' } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  return new MatchSocket(res.webSocket);
}
