import { describe, expect, it } from 'vitest';
import { env, evictDurableObject } from 'cloudflare:test';
import { api, control, createRoom, openRoomSocket, sleep } from './helpers.ts';

describe('room sockets', () => {
  it('welcomes a viewer with the current anchor at once', async () => {
    const room = await createRoom({ bpm: 100 });
    await control(room.code, room.control_token, 'play');
    const ws = await openRoomSocket(room.code);
    const w = await ws.next('welcome');
    expect(w).toMatchObject({ code: room.code, role: 'viewer', agent: { connected: false }, anchor: { status: 'playing', bpm: 100, version: 2 } });
    expect(Math.abs(w.server_ms - Date.now())).toBeLessThan(1000);
    ws.close();
  });

  it('refuses an upgrade to an unknown room with 404 and a plain GET with 426', async () => {
    const res = await api('/api/v1/rooms/ZZZZZ3/ws', { headers: { upgrade: 'websocket' }, ip: '10.1.2.3' });
    expect(res.status).toBe(404);
    const room = await createRoom();
    expect((await api(`/api/v1/rooms/${room.code}/ws`)).status).toBe(426);
  });

  it('answers pings with the server receive and send times', async () => {
    const room = await createRoom();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    const t0 = Date.now();
    ws.send({ type: 'ping', id: 7, t0 });
    const pong = await ws.next('pong');
    expect(pong).toMatchObject({ id: 7, t0 });
    expect(pong.t2).toBeGreaterThanOrEqual(pong.t1);
    expect(Math.abs(pong.t1 - t0)).toBeLessThan(1000);
    ws.close();
  });

  it('broadcasts every change to viewers and lets a controller drive the transport over the socket', async () => {
    const room = await createRoom();
    const viewer = await openRoomSocket(room.code);
    const ctl = await openRoomSocket(room.code);
    await viewer.next('welcome');
    await ctl.next('welcome');
    ctl.send({ type: 'hello', role: 'controller', token: room.control_token, id: 'h' });
    expect(await ctl.next('ack')).toMatchObject({ id: 'h', op: 'hello', role: 'controller' });

    ctl.send({ type: 'play', id: 'p1' });
    expect(await ctl.next('ack')).toMatchObject({ id: 'p1', op: 'play', version: 2 });
    expect(await viewer.next('anchor')).toMatchObject({ cause: 'play', anchor: { status: 'playing', version: 2 } });

    ctl.send({ type: 'tempo', bpm: 90, id: 't' });
    expect((await viewer.next('anchor')).anchor.bpm).toBe(90);
    ctl.send({ type: 'seek', beats: 16, id: 's' });
    expect((await viewer.next('anchor')).cause).toBe('seek');
    ctl.send({ type: 'pause' });
    expect((await viewer.next('anchor')).anchor.status).toBe('paused');
    ctl.send({ type: 'resume' });
    expect((await viewer.next('anchor')).anchor.status).toBe('playing');
    ctl.send({ type: 'stop' });
    expect((await viewer.next('anchor')).anchor).toMatchObject({ status: 'stopped', sample: 0 });
    ctl.send({ type: 'play', at: 'next_bar', id: 'nb' });
    expect((await viewer.next('anchor')).anchor.server_ms).toBeGreaterThan(Date.now());

    const m = await (await api(`/api/v1/rooms/${room.code}/metrics`)).json<{ connections: Record<string, number>; state_changes: number }>();
    expect(m.connections).toMatchObject({ viewer: 1, controller: 1, total: 2 });
    expect(m.state_changes).toBe(7);
    viewer.close();
    ctl.close();
  });

  it('refuses control from viewers and wrong tokens, and closes after repeated failures', async () => {
    const room = await createRoom();
    const other = await createRoom();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    ws.send({ type: 'play', id: 'x' });
    expect(await ws.next('error')).toMatchObject({ code: 'forbidden', id: 'x' });
    ws.send({ type: 'hello', role: 'controller', token: other.control_token, id: 'y' });
    expect(await ws.next('error')).toMatchObject({ code: 'unauthorized', id: 'y' });
    for (let i = 0; i < 4; i++) ws.send({ type: 'hello', role: 'controller', token: 'guess' + i });
    expect((await ws.closedWith()).code).toBe(4001);
    const t = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<{ status: string }>();
    expect(t.status).toBe('stopped');
  });

  it('answers every kind of bad frame with a typed error and keeps the socket and the state', async () => {
    const room = await createRoom();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    ws.send({ type: 'hello', role: 'controller', token: room.control_token });
    await ws.next('ack');
    const cases: Array<[unknown, string]> = [
      ['{not json', 'bad_json'],
      [{ type: 'dance' }, 'unknown_type'],
      [{ no: 'type' }, 'unknown_type'],
      [{ type: 'seek', seconds: -5, id: 'neg' }, 'bad_request'],
      [{ type: 'seek', seconds: 'NaN' }, 'bad_request'],
      [{ type: 'seek' }, 'bad_request'],
      [{ type: 'tempo', bpm: 1e12 }, 'bad_request'],
      [{ type: 'ping', id: -1, t0: 1 }, 'bad_request'],
      [{ type: 'play', at: 'tomorrow' }, 'bad_request'],
      [{ type: 'hello', role: 'admin' }, 'bad_request'],
      [JSON.stringify({ type: 'ping', id: 1, t0: 1, pad: 'x'.repeat(5000) }), 'too_large'],
      ['null', 'unknown_type'],
    ];
    for (const [msg, code] of cases) {
      ws.send(msg);
      const err = await ws.next('error');
      expect(err.code, JSON.stringify(msg).slice(0, 80)).toBe(code);
    }
    ws.ws.send(new Uint8Array([1, 2, 3]));
    expect((await ws.next('error')).code).toBe('bad_request');
    ws.send({ type: 'ping', id: 1, t0: 5 });
    expect((await ws.next('pong')).id).toBe(1);
    const t = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<{ version: number }>();
    expect(t.version).toBe(1);
    ws.close();
  });

  it('drops messages beyond the per-socket rate with a rate_limited error', async () => {
    const room = await createRoom();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    for (let i = 0; i < 150; i++) ws.send({ type: 'ping', id: i, t0: 1 });
    const err = await ws.next('error');
    expect(err.code).toBe('rate_limited');
    await sleep(300);
    const msgs = ws.drain();
    const pongs = msgs.filter((m) => m.type === 'pong').length;
    expect(pongs).toBeGreaterThanOrEqual(79);
    expect(pongs).toBeLessThan(150);
    ws.close();
  });
});

describe('tick streams', () => {
  it('pushes the full state frame at the requested rate, only to clients that asked', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'play');
    const ticker = await openRoomSocket(room.code, '?ticks=20');
    const quiet = await openRoomSocket(room.code);
    await ticker.next('welcome');
    await quiet.next('welcome');
    ticker.drain();
    await sleep(1500);
    const ticks = ticker.drain().filter((m) => m.type === 'tick');
    // The median spacing pins the rate; a loaded machine may delay a few
    // ticks (the room skips rather than bursts), so the count has slack.
    const gaps = ticks.slice(1).map((t, i) => (t as { timestamp_ms: number }).timestamp_ms - (ticks[i] as { timestamp_ms: number }).timestamp_ms).sort((a, b) => a - b);
    expect(gaps[gaps.length >> 1]).toBeGreaterThanOrEqual(45);
    expect(gaps[gaps.length >> 1]).toBeLessThanOrEqual(60);
    expect(ticks.length).toBeGreaterThanOrEqual(15);
    expect(ticks.length).toBeLessThanOrEqual(32);
    const last = ticks.at(-1)!;
    expect(last).toMatchObject({ playing: true, status: 'playing', sample_rate: 48_000, bpm: 120 });
    expect(last.time_formatted).toMatch(/^\d\d:\d\d\.\d{3}$/);
    expect(quiet.drain().filter((m) => m.type === 'tick')).toHaveLength(0);
    const m = await (await api(`/api/v1/rooms/${room.code}/metrics`)).json<{ connections: { tick_streams: number } }>();
    expect(m.connections.tick_streams).toBe(1);
    ticker.close();
    quiet.close();
  });

  it('rejects tick rates outside 1–60 Hz', async () => {
    const room = await createRoom();
    for (const q of ['?ticks=0', '?ticks=61', '?ticks=abc', '?ticks=2.5']) {
      const res = await api(`/api/v1/rooms/${room.code}/ws${q}`, { headers: { upgrade: 'websocket' } });
      expect(res.status, q).toBe(400);
    }
  });

  it('sends nothing to a viewer while the transport plays with no changes', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'play');
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    await sleep(700);
    expect(ws.drain()).toEqual([]);
    ws.close();
  });
});

describe('eviction and hibernation', () => {
  it('keeps sockets, roles and state when the object is evicted with hibernation', async () => {
    const room = await createRoom();
    const viewer = await openRoomSocket(room.code);
    const ctl = await openRoomSocket(room.code);
    await viewer.next('welcome');
    await ctl.next('welcome');
    ctl.send({ type: 'hello', role: 'controller', token: room.control_token });
    await ctl.next('ack');
    ctl.send({ type: 'play', id: 'a' });
    await ctl.next('ack');
    await viewer.next('anchor');

    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    await evictDurableObject(stub, { webSockets: 'hibernate' });

    // The same sockets still work; the controller is still a controller.
    ctl.send({ type: 'seek', seconds: 30, id: 'b' });
    expect(await ctl.next('ack')).toMatchObject({ id: 'b', version: 3 });
    expect((await viewer.next('anchor')).anchor.sample).toBe(30 * 48_000);
    viewer.send({ type: 'ping', id: 3, t0: 1 });
    expect((await viewer.next('pong')).id).toBe(3);
    const m = await (await api(`/api/v1/rooms/${room.code}/metrics`)).json<{ connections: Record<string, number>; state_changes: number }>();
    expect(m.connections).toMatchObject({ viewer: 1, controller: 1 });
    expect(m.state_changes).toBe(2);
    viewer.close();
    ctl.close();
  });

  it('loses nothing when evicted with its sockets closed', async () => {
    const room = await createRoom({ bpm: 77 });
    await control(room.code, room.control_token, 'seek', { seconds: 12 });
    const stub = env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code));
    await evictDurableObject(stub, { webSockets: 'close' });
    const t = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<{ bpm: number; sample_pos: number; version: number }>();
    expect(t).toMatchObject({ bpm: 77, sample_pos: 12 * 48_000, version: 2 });
    expect((await control(room.code, room.control_token, 'play')).status).toBe(200);
  });
});
