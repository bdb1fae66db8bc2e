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
});
