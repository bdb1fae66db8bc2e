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

  it('identify streams half-second frames: the server matches no smaller batch, and every message costs it CPU', async () => {
    const frames: number[] = [];
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (ws) => {
      let samples = 0;
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          frames.push((data as Buffer).byteLength);
          samples += (data as Buffer).byteLength / 4;
          return;
        }
        const msg = JSON.parse(String(data)) as { type: string };
        if (msg.type === 'hello') ws.send(JSON.stringify({ type: 'ready', data: { client_id: 'x', sample_rate: 22050, format: 'f32', burst_s: 12 } }));
        if (msg.type === 'end') ws.send(JSON.stringify({ type: 'ended', data: { audio_s: samples / 22050, state: 'listening', match: null } }));
      });
    });
    await new Promise((r) => server!.once('listening', r));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const r = await identifySamples(url, new Float32Array(Math.round(22050 * 2.2)), 22050, { clientId: 'x', full: true });
    expect(r.match).toBeNull();
    // 2.2 s: four frames of 0.5 s (11025 samples of 4 bytes) and the 0.2 s left.
    expect(frames).toEqual([44100, 44100, 44100, 44100, 17640]);
  });
});
