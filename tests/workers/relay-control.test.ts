import { describe, expect, it } from 'vitest';
import { env, runInDurableObject } from 'cloudflare:test';
import type { TransportSession } from '../../src/durable/transport-session.ts';
import { control, createRoom, openRoomSocket, sleep } from './helpers.ts';

// A viewer the room places on a relay (past ROOM_VIEWER_CAPACITY) must not be
// able to control the room, whatever it sends, even with the right token:
// control goes over ?role=controller (or REST), which the room itself serves.
// The capacity is lowered on this room's object only; the rest of the suite
// runs with the configured value.
async function lowCapacity(code: string): Promise<void> {
  const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(code));
  await runInDurableObject(stub, (room: TransportSession) => {
    const self = room as unknown as { env: Record<string, unknown> };
    self.env = { ...self.env, ROOM_VIEWER_CAPACITY: '1', RELAY_CAPACITY: '2' };
  });
}

describe('relayed viewers', () => {
  it('refuse control, by message or by hello with the control token, and the room does not change', async () => {
    const room = await createRoom();
    await lowCapacity(room.code);
    const own = await openRoomSocket(room.code);
    await own.next('welcome');
    const relayed = await openRoomSocket(room.code);
    const welcome = await relayed.next('welcome');
    expect(welcome.role).toBe('viewer');
    const before = welcome.anchor.version;
    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    const stats = (await stub.metrics())!;
    expect(stats.connections.relays).toBe(1);
    expect(stats.connections.relayed_viewers).toBeGreaterThanOrEqual(1);

    for (const msg of [
      { type: 'play', id: 'p1' },
      { type: 'seek', id: 's1', seconds: 30 },
      { type: 'tempo', id: 't1', bpm: 90 },
      { type: 'stop', id: 'x1' },
      { type: 'hello', id: 'h1', role: 'controller', token: room.control_token },
      { type: 'hello', id: 'h2', role: 'agent', token: room.control_token },
      { type: 'play', id: 'p2' },
    ]) {
      relayed.send(msg);
      const err = await relayed.next('error');
      expect(err).toMatchObject({ code: 'forbidden', id: msg.id });
    }
    await sleep(100);
    expect(relayed.messages.some((m) => m.type === 'ack' && m.op !== 'hello')).toBe(false);
    expect(relayed.closed).toBeNull();
    const summary = (await stub.summary())!;
    expect(summary.anchor.version).toBe(before);
    expect(summary.anchor.status).not.toBe('playing');

    // The way to control a crowded room still works: REST, and a controller socket on the room itself.
    expect((await control(room.code, room.control_token, 'play')).status).toBe(200);
    const anchor = await relayed.next('anchor');
    expect(anchor.anchor.status).toBe('playing');
    own.ws.close(1000, 'done');
    relayed.ws.close(1000, 'done');
  });
});
