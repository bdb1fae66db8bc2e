import { describe, expect, it } from 'vitest';
import { control, createRoom, openRoomSocket, sleep, type TestSocket } from './helpers.ts';

async function attachAgent(code: string, token: string): Promise<TestSocket> {
  const agent = await openRoomSocket(code);
  await agent.next('welcome');
  agent.send({ type: 'hello', role: 'agent', token, id: 'h' });
  expect(await agent.next('ack')).toMatchObject({ role: 'agent' });
  return agent;
}

const state = (over: Record<string, unknown>) => ({ type: 'agent_state', cause: 'attach', status: 'stopped', sample: 0, server_ms: Date.now(), bpm: 120, beats_per_bar: 4, ...over });

describe('the agent in a room', () => {
  it('tells viewers when an agent attaches and when it drops, and keeps the anchor when it drops', async () => {
    const room = await createRoom();
    const viewer = await openRoomSocket(room.code);
    await viewer.next('welcome');
    const agent = await attachAgent(room.code, room.control_token);
    expect((await viewer.next('agent')).agent.connected).toBe(true);
    agent.send(state({ cause: 'local', status: 'playing', sample: 48_000 }));
    const playing = (await viewer.next('anchor')).anchor;
    agent.close();
    expect((await viewer.next('agent')).agent.connected).toBe(false);
    const w = await (await openRoomSocket(room.code)).next('welcome');
    expect(w.anchor).toEqual(playing);
    viewer.close();
  });

  it('forwards control to the agent in absolute terms and acknowledges after the agent confirms', async () => {
    const room = await createRoom({ bpm: 120 });
    const agent = await attachAgent(room.code, room.control_token);
    const viewer = await openRoomSocket(room.code);
    await viewer.next('welcome');

    const seek = control(room.code, room.control_token, 'seek', { beats: 8 });
    const fwd = await agent.next('control');
    expect(fwd.command).toEqual({ op: 'seek', samples: 4 * 48_000 });
    agent.send(state({ id: fwd.id, cause: 'seek', sample: 4 * 48_000 }));
    const res = await seek;
    expect(res.status).toBe(200);
    expect((await viewer.next('anchor')).anchor.sample).toBe(4 * 48_000);

    const play = control(room.code, room.control_token, 'play', { at: 'next_bar' });
    const p = await agent.next('control');
    expect(p.command.op).toBe('play');
    const at = (p.command as { at: number }).at;
    expect(at % 2000).toBe(0); // bar lines of 2 s at 120 BPM in 4/4
    agent.send(state({ id: p.id, cause: 'play', status: 'playing', sample: 4 * 48_000, server_ms: at }));
    expect((await play).status).toBe(200);
    const anchor = (await viewer.next('anchor')).anchor;
    expect(anchor).toMatchObject({ status: 'playing', server_ms: at, rate: 48_000 });
    agent.close();
    viewer.close();
  });

  it('answers 503 when the agent does not confirm, and 409 when it refuses', async () => {
    const room = await createRoom();
    const agent = await attachAgent(room.code, room.control_token);
    const silent = await control(room.code, room.control_token, 'pause');
    expect(silent.status).toBe(503);
    await agent.next('control'); // the unanswered pause
    const refused = control(room.code, room.control_token, 'play');
    const fwd = await agent.next('control');
    agent.send(state({ id: fwd.id, cause: 'play', error: 'the DAW is recording' }));
    const res = await refused;
    expect(res.status).toBe(409);
    expect((await res.json<{ error: { message: string } }>()).error.message).toMatch(/DAW is recording/);
    agent.close();
  });

  it('follows a drifting device clock with few corrections', async () => {
    const room = await createRoom();
    const agent = await attachAgent(room.code, room.control_token);
    const viewer = await openRoomSocket(room.code);
    await viewer.next('welcome');
    // The device started 7 s ago; its reports arrive now, stamped as the device would have.
    const start = Date.now() - 7000;
    agent.send(state({ cause: 'local', status: 'playing', sample: 0, server_ms: start }));
    await viewer.next('anchor');
    const rate = 48_000 * (1 + 300e-6);
    for (let i = 1; i <= 140; i++) {
      agent.send({ type: 'clock', sample: ((i * 50) / 1000) * rate, server_ms: start + i * 50 });
      if (i === 100) await sleep(1100); // corrections are at most one a second
    }
    await sleep(300);
    const corrections = viewer.drain().filter((m) => m.type === 'anchor' && m.cause === 'correction');
    expect(corrections.length).toBeGreaterThanOrEqual(1);
    expect(corrections.length).toBeLessThanOrEqual(3);
    const last = corrections.at(-1)!;
    if (last.type !== 'anchor') throw new Error('unreachable');
    expect((last.anchor.rate / 48_000 - 1) * 1e6).toBeCloseTo(300, -1);
    agent.close();
    viewer.close();
  });

  it('lets a newer agent replace the older one, which is told and closed', async () => {
    const room = await createRoom();
    const first = await attachAgent(room.code, room.control_token);
    await attachAgent(room.code, room.control_token);
    expect((await first.next('error')).code).toBe('conflict');
    expect((await first.closedWith()).code).toBe(4002);
  });

  it('refuses agent messages from viewers and controllers', async () => {
    const room = await createRoom();
    const ws = await openRoomSocket(room.code);
    await ws.next('welcome');
    ws.send({ type: 'clock', sample: 1, server_ms: Date.now() });
    expect((await ws.next('error')).code).toBe('forbidden');
    ws.send({ type: 'hello', role: 'controller', token: room.control_token });
    await ws.next('ack');
    ws.send(state({ cause: 'local', status: 'playing' }));
    expect((await ws.next('error')).code).toBe('forbidden');
    ws.send({ type: 'hello', role: 'agent', token: 'wrong' });
    expect((await ws.next('error')).code).toBe('unauthorized');
    ws.close();
  });

  it('ignores a reattaching agent that agrees with the published line: no jump, no new version', async () => {
    const room = await createRoom();
    const now = Date.now();
    const a1 = await attachAgent(room.code, room.control_token);
    a1.send(state({ cause: 'local', status: 'playing', sample: 0, server_ms: now }));
    const viewer = await openRoomSocket(room.code);
    const v = (await viewer.next('welcome')).anchor.version;
    a1.close();
    await viewer.next('agent');
    const a2 = await attachAgent(room.code, room.control_token);
    const t = Date.now();
    a2.send(state({ cause: 'attach', status: 'playing', sample: ((t - now) / 1000) * 48_000, server_ms: t }));
    await sleep(200);
    expect(viewer.drain().filter((m) => m.type === 'anchor')).toEqual([]);
    const w = await (await openRoomSocket(room.code)).next('welcome');
    expect(w.anchor.version).toBe(v);
    a2.close();
    viewer.close();
  });
});
