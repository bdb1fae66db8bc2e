import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { AnalysisStreamClient } from './analysis-stream-client.ts';
import { identifySamples } from './commands/identify.ts';

let server: WebSocketServer | null = null;

/** A server that would compress if offered, recording what each client offered and closing it. */
async function offers(): Promise<{ url: string; extensions: Array<string | undefined> }> {
  const extensions: Array<string | undefined> = [];
  server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
  server.on('connection', (ws, req) => {
    extensions.push(req.headers['sec-websocket-extensions']);
    ws.close(1011, 'test');
  });
  await new Promise((r) => server!.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, extensions };
}

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

describe('sockets that carry PCM', () => {
  it('offer no compression: not for match streams, nor for analysis sources', async () => {
    const s = await offers();
    await identifySamples(new URL(s.url), new Float32Array(22050), 22050, { clientId: 'x' }).catch(() => undefined);
    await AnalysisStreamClient.connect(`${s.url.replace('http', 'ws')}/api/v1/analysis/x`, { role: 'source', sampleRate: 22050, connectTimeoutMs: 2000 }).catch(() => undefined);
    expect(s.extensions).toEqual([undefined, undefined]);
  });

  /** A match server that answers hello with `ready` advising `frameS`, counts the bytes of each frame, and answers `end`. */
  async function matchServer(frameS: number, onFrame?: (ws: import('ws').WebSocket, frames: number) => void): Promise<{ url: URL; frames: number[] }> {
    const frames: number[] = [];
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (ws) => {
      let samples = 0;
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          frames.push((data as Buffer).byteLength);
          samples += (data as Buffer).byteLength / 4;
          onFrame?.(ws, frames.length);
          return;
        }
        const msg = JSON.parse(String(data)) as { type: string };
        if (msg.type === 'hello') ws.send(JSON.stringify({ type: 'ready', data: { client_id: 'x', sample_rate: 22050, format: 'f32', burst_s: 12, frame_s: frameS } }));
        if (msg.type === 'end') ws.send(JSON.stringify({ type: 'ended', data: { audio_s: samples / 22050, state: 'listening', match: null, landmarks: 0, frame_s: frameS } }));
      });
    });
    await new Promise((r) => server!.once('listening', r));
    return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), frames };
  }

  it('identify sends a clip ahead of real time in the largest frames the server takes: it joins them into long batches anyway', async () => {
    const s = await matchServer(0.5);
    const r = await identifySamples(s.url, new Float32Array(Math.round(22050 * 6)), 22050, { clientId: 'x', full: true });
    expect(r.match).toBeNull();
    // 2.9 s of 22.05 kHz f32 (255,780 bytes) is the longest frame within 256 KB.
    expect(s.frames).toEqual([255780, 255780, 17640]);
  });

  it('identify paced at real time sends the frames the server advises, and follows a new advice from the next frame', async () => {
    // Advises half a second, then (after two frames) 1 s, as a stream whose track became known is told 2 s.
    const s = await matchServer(0.5, (ws, n) => {
      if (n === 2) ws.send(JSON.stringify({ type: 'status', data: { audio_s: 1, state: 'matched', match: null, landmarks: 0, frame_s: 1 } }));
    });
    await identifySamples(s.url, new Float32Array(Math.round(22050 * 2.2)), 22050, { clientId: 'x', full: true, realtime: true });
    expect(s.frames).toEqual([44100, 44100, 88200, 17640]);
  });
});
