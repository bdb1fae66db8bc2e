import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';

let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('the worker on workerd', () => {
  it('answers health and creates rooms over real HTTP', async () => {
    const health: { ok: boolean } = await (await fetch(`${server.url}/api/v1/health`)).json();
    expect(health.ok).toBe(true);
    const res = await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' });
    expect(res.status).toBe(201);
    const room = (await res.json()) as { code: string; ws_url: string };
    expect(room.ws_url).toBe(`ws://127.0.0.1:${server.port}/api/v1/rooms/${room.code}/ws`);
  });
});
