// Property-based: whatever arrives, the room answers with a typed error or a
// valid reply, never crashes, and a viewer's junk never changes its state.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { api, control, createRoom, openRoomSocket } from './helpers.ts';
import { ERROR_STATUS, type TransportFrame } from '../../src/protocol/index.ts';

const ERROR_CODES = Object.keys(ERROR_STATUS);

/** Frames shaped like ours with wrong values, plus anything at all. */
const frame = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({
    type: fc.constantFrom('hello', 'ping', 'play', 'pause', 'resume', 'stop', 'seek', 'tempo', 'clock', 'agent_state', 'nope'),
    id: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
    t0: fc.oneof(fc.double(), fc.string()),
    seconds: fc.oneof(fc.double(), fc.constant('NaN'), fc.constant(null)),
    bpm: fc.oneof(fc.double(), fc.integer()),
    role: fc.oneof(fc.constantFrom('viewer', 'controller', 'agent', 'admin'), fc.string()),
    token: fc.string(),
    at: fc.oneof(fc.constantFrom('now', 'next_bar', 'later'), fc.double()),
  }, { requiredKeys: ['type'] }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 64 }),
);

describe('room input, property-based', () => {
  it('answers every frame from a viewer with a typed reply and keeps the state', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'play');
    const before = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<TransportFrame>();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        if (typeof f === 'string') ws.send(f);
        else ws.ws.send(f);
        // Every frame gets exactly one reply: pong, ack (a viewer's own hello) or a typed error.
        const deadline = Date.now() + 3000;
        let reply;
        while (!(reply = ws.drain()[0])) {
          if (Date.now() > deadline) throw new Error(`no reply to ${String(f).slice(0, 80)}`);
          await new Promise((r) => setTimeout(r, 2));
        }
        expect(['pong', 'ack', 'error']).toContain(reply.type);
        if (reply.type === 'error') expect(ERROR_CODES).toContain(reply.code);
        if (reply.type === 'ack') expect(reply.op).toBe('hello');
        // Slow enough to stay under the per-socket rate limit.
        await new Promise((r) => setTimeout(r, 26));
      }),
      { numRuns: 120 },
    );
    expect(ws.closed).toBeNull();
    const after = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<TransportFrame>();
    expect(after.version).toBe(before.version);
    ws.close();
  });

  it('answers every control body with 200 or a typed 4xx, never a 500, and the room keeps working', async () => {
    const room = await createRoom();
    const ops = ['play', 'pause', 'resume', 'stop', 'seek', 'tempo', 'rewind'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ops), fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 200 })), async (op, body) => {
        const res = await api(`/api/v1/rooms/${room.code}/transport/${op}`, {
          method: 'POST',
          body,
          headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' },
        });
        expect(res.status).toBeLessThan(500);
        const json = await res.json<{ ok?: boolean; error?: { code: string } }>();
        if (res.status === 200) expect(json.ok).toBe(true);
        else expect(ERROR_CODES).toContain(json.error!.code);
      }),
      { numRuns: 150 },
    );
    // The room still works.
    expect((await control(room.code, room.control_token, 'seek', { seconds: 3 })).status).toBe(200);
  });

  it('answers every room-creation body with 201 or a typed 400', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 100 })), async (body) => {
        const res = await api('/api/v1/rooms', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        expect([201, 400]).toContain(res.status);
        if (res.status === 400) expect(['bad_json', 'bad_request']).toContain((await res.json<{ error: { code: string } }>()).error.code);
      }),
      { numRuns: 80 },
    );
  });
});
