import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { RoomClient } from '../../src/client/room-client.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import type { RoomServerMessage } from '../../src/protocol/index.ts';

// Capacities set tiny so the relay tree engages with a handful of sockets.
let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer({ vars: { ROOM_VIEWER_CAPACITY: '3', RELAY_CAPACITY: '2' } });
});
afterAll(async () => {
  await server?.stop();
});

class Viewer {
  readonly ws: WebSocket;
  readonly messages: RoomServerMessage[] = [];
  closeCode: number | null = null;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => this.messages.push(JSON.parse(d.toString())));
    ws.on('close', (code) => (this.closeCode = code));
  }
  static open(url: string): Promise<Viewer> {
    return new Promise((resolve, reject) => {
      const v = new Viewer(new WebSocket(url));
      v.ws.once('open', () => resolve(v));
      v.ws.once('error', reject);
    });
  }
  async next<T extends RoomServerMessage['type']>(type: T, timeoutMs = 5000): Promise<Extract<RoomServerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex((m) => m.type === type);
      if (i >= 0) return this.messages.splice(i, 1)[0] as Extract<RoomServerMessage, { type: T }>;
      if (Date.now() > deadline) throw new Error(`no ${type}; have ${this.messages.map((m) => m.type)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('relay tree for crowded rooms', () => {
  it('spreads viewers over relays past the room capacity and still delivers every change once to each', async () => {
    const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', body: '{"idle_ttl_s":30}' })).json()) as { code: string; control_token: string };
    const wsUrl = `${server.url.replace('http', 'ws')}/api/v1/rooms/${room.code}/ws`;
    const viewers: Viewer[] = [];
    for (let i = 0; i < 7; i++) {
      const v = await Viewer.open(wsUrl);
      await v.next('welcome');
      viewers.push(v);
    }
    const ctl = new RoomClient({ url: server.url, code: room.code, token: room.control_token });
    await ctl.connect();
    expect(ctl.role).toBe('controller');

    const m = (await (await fetch(`${server.url}/api/v1/rooms/${room.code}/metrics`)).json()) as { connections: Record<string, number> };
    expect(m.connections).toMatchObject({ relays: 2, relayed_viewers: 4, viewer: 7, controller: 1 });

    await ctl.play();
    await ctl.seek({ seconds: 12 });
    for (const v of viewers) {
      const a1 = await v.next('anchor');
      const a2 = await v.next('anchor');
      expect([a1.cause, a2.cause]).toEqual(['play', 'seek']);
      expect(a2.anchor.sample).toBe(12 * 48_000);
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const v of viewers) expect(v.messages.filter((x) => x.type === 'anchor')).toHaveLength(0);

    // A relayed viewer syncs its clock with its relay and cannot take control there.
    const relayed = viewers[6];
    relayed.ws.send(JSON.stringify({ type: 'ping', id: 9, t0: Date.now() }));
    expect((await relayed.next('pong')).id).toBe(9);
    relayed.ws.send(JSON.stringify({ type: 'hello', role: 'controller', token: room.control_token, id: 'x' }));
    expect(await relayed.next('error')).toMatchObject({ code: 'forbidden', id: 'x' });

    // A late joiner on a relay is welcomed with the latest anchor.
    const late = new RoomClient({ url: server.url, code: room.code });
    await late.connect();
    expect(late.anchor!.version).toBe(ctl.anchor!.version);
    // Read at one local instant (the playhead moves: a pause between two reads would show as a gap), each
    // through its own clock estimate, off by at most half its best round trip.
    const now = localNow();
    const bound = 0.005 + (late.sync.uncertaintyMs + ctl.sync.uncertaintyMs) / 1000;
    expect(Math.abs(late.position(now)!.seconds - ctl.position(now)!.seconds)).toBeLessThan(bound);

    late.close();
    ctl.close();
    for (const v of viewers) v.ws.close();
  });

  it('tells relayed viewers when the room expires and closes them', async () => {
    const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', body: '{"idle_ttl_s":2}' })).json()) as { code: string };
    const wsUrl = `${server.url.replace('http', 'ws')}/api/v1/rooms/${room.code}/ws`;
    const viewers: Viewer[] = [];
    for (let i = 0; i < 5; i++) {
      const v = await Viewer.open(wsUrl);
      await v.next('welcome');
      viewers.push(v);
    }
    for (const v of viewers) expect((await v.next('expired', 8000)).reason).toMatch(/no activity/);
    await new Promise((r) => setTimeout(r, 300));
    // The server's close frame has arrived (CLOSING or CLOSED); ws reports the
    // code only when the TCP connection ends, which the server may take its time over.
    expect(viewers.map((v) => v.ws.readyState >= WebSocket.CLOSING)).toEqual([true, true, true, true, true]);
  });
});
