import { describe, expect, it } from 'vitest';
import { env, runDurableObjectAlarm } from 'cloudflare:test';
import { api, createRoom, openRoomSocket, sleep } from './helpers.ts';
import { ROOM_CODE_ALPHABET } from '../../src/protocol/index.ts';
import { hashToken } from '../../src/lib/tokens.ts';

describe('room creation', () => {
  it('creates a room with a readable code and a one-time control token', async () => {
    const room = await createRoom();
    expect(room.code).toMatch(new RegExp(`^[${ROOM_CODE_ALPHABET}]{6,}$`));
    expect(room.code).not.toMatch(/[01OIL]/);
    expect(Buffer.from(room.control_token, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(room.ws_url).toBe(`ws://roomtone.test/api/v1/rooms/${room.code}/ws`);
    expect(room.page_url).toBe(`http://roomtone.test/r/${room.code}`);
  });

  it('stores the control token only as a hash', async () => {
    const room = await createRoom();
    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    const { runInDurableObject } = await import('cloudflare:test');
    const stored = await runInDurableObject(stub, async (_obj, state) => JSON.stringify(await state.storage.get('room')));
    expect(stored).not.toContain(room.control_token);
    expect(stored).toContain(await hashToken(room.control_token));
  });

  it('accepts initial tempo, sample rate and metre, and rejects nonsense', async () => {
    const room = await createRoom({ bpm: 96, sample_rate: 44_100, beats_per_bar: 3 });
    const t = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<Record<string, unknown>>();
    expect(t).toMatchObject({ bpm: 96, sample_rate: 44_100, beats_per_bar: 3, status: 'stopped', playing: false, version: 1 });
    for (const body of ['{"bpm":5}', '{"bpm":1000}', '{"sample_rate":12.5}', '{"beats_per_bar":0}', '{"extra":1}', '{"bpm":"fast"}', '[1,2]']) {
      const res = await api('/api/v1/rooms', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(res.status, body).toBe(400);
      expect((await res.json<{ error: { code: string } }>()).error.code).toBe('bad_request');
    }
    const bad = await api('/api/v1/rooms', { method: 'POST', body: '{"bpm":', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: { code: string } }>()).error.code).toBe('bad_json');
  });

  it('reads codes case-insensitively and ignores spaces and dashes', async () => {
    const room = await createRoom();
    const messy = `${room.code.slice(0, 3).toLowerCase()}-${room.code.slice(3)}`;
    const res = await api(`/api/v1/rooms/${encodeURIComponent(messy)}/transport`);
    expect(res.status).toBe(200);
  });
});

describe('unknown rooms and guessing', () => {
  it('answers an unknown code with a JSON 404', async () => {
    const res = await api('/api/v1/rooms/ZZZZZZ/transport', { ip: '10.0.0.1' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: expect.stringContaining('no room') } });
    const malformed = await api('/api/v1/rooms/0O1IL!/transport', { ip: '10.0.0.1' });
    expect(malformed.status).toBe(404);
  });

  it('throttles a client after many failed joins, while others still get in', async () => {
    const room = await createRoom();
    let last = 0;
    for (let i = 0; i < 25; i++) last = (await api('/api/v1/rooms/ZZZZZ2/transport', { ip: '10.9.9.9' })).status;
    expect(last).toBe(429);
    const blocked = await api(`/api/v1/rooms/${room.code}/transport`, { ip: '10.9.9.9' });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await api(`/api/v1/rooms/${room.code}/transport`, { ip: '10.9.9.10' })).status).toBe(200);
  });

  it('counts wrong control tokens as failed joins', async () => {
    const room = await createRoom();
    for (let i = 0; i < 20; i++) {
      const res = await api(`/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: 'Bearer nope', 'cf-connecting-ip': '10.7.7.7' } });
      expect(res.status).toBe(401);
    }
    const res = await api(`/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}`, 'cf-connecting-ip': '10.7.7.7' } });
    expect(res.status).toBe(429);
  });
});

describe('expiry', () => {
  it('expires an idle room, tells connected clients, and forgets it', async () => {
    const room = await createRoom({ idle_ttl_s: 1 });
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    await sleep(1100);
    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    await runDurableObjectAlarm(stub); // the alarm may already have fired on its own: either way it must have expired
    const expired = await ws.next('expired');
    expect(expired.reason).toMatch(/no activity/);
    expect((await ws.closedWith()).code).toBe(4000);
    expect((await api(`/api/v1/rooms/${room.code}/transport`)).status).toBe(404);
  });

  it('does not expire a room that saw activity; the alarm moves to the new deadline', async () => {
    const room = await createRoom({ idle_ttl_s: 2 });
    await sleep(1200);
    const ws = await openRoomSocket(room.code); // a join is activity
    await ws.next('welcome');
    await sleep(900);
    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    await runDurableObjectAlarm(stub);
    expect((await api(`/api/v1/rooms/${room.code}/transport`)).status).toBe(200);
    ws.close();
  });
});
