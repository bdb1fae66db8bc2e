import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { freePort, startLocalServer, type LocalServer } from '../support/local-server.ts';

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

describe('starting the local server', () => {
  it('chooses another port when the one it picked was taken before wrangler bound it, and says so when a given port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const picks: number[] = [];
      const own = await startLocalServer({}, async () => {
        const p = picks.length ? await freePort() : taken;
        picks.push(p);
        return p;
      });
      try {
        // Each attempt picks the server's port, then the inspector's.
        expect(picks[0]).toBe(taken);
        expect(own.port).toBe(picks[2]);
        expect((await fetch(`${own.url}/api/v1/health`)).ok).toBe(true);
      } finally {
        await own.stop();
      }
      await expect(startLocalServer({ port: taken })).rejects.toThrow(/could not bind its port/);
    } finally {
      blocker.close();
    }
  }, 120_000);

  it('keeps a given port and picks another inspector port when the one it picked was taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const given = await freePort();
      const picks: number[] = [];
      const own = await startLocalServer({ port: given }, async () => {
        const p = picks.length ? await freePort() : taken;
        picks.push(p);
        return p;
      });
      try {
        expect(picks.length).toBe(2);
        expect(own.port).toBe(given);
        expect(own.process.spawnargs).toContain(String(picks[1]));
        expect((await fetch(`${own.url}/api/v1/health`)).ok).toBe(true);
      } finally {
        await own.stop();
      }
    } finally {
      blocker.close();
    }
  }, 120_000);
});
