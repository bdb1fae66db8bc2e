import { describe, expect, it } from 'vitest';
import { api, control, createRoom, sleep } from './helpers.ts';
import type { TransportFrame } from '../../src/protocol/index.ts';

async function transport(code: string): Promise<TransportFrame> {
  return (await api(`/api/v1/rooms/${code}/transport`)).json();
}

describe('transport control over REST', () => {
  it('plays, pauses, resumes, seeks and stops with the classic fields', async () => {
    const room = await createRoom();
    const play = await control(room.code, room.control_token, 'play');
    expect(play.status).toBe(200);
    const body = await play.json<{ ok: boolean; changed: boolean; transport: TransportFrame }>();
    expect(body).toMatchObject({ ok: true, changed: true, transport: { playing: true, status: 'playing', version: 2 } });
    await sleep(120);
    const t = await transport(room.code);
    expect(t.time_seconds).toBeGreaterThan(0.1);
    expect(t.time_formatted).toMatch(/^00:00\.\d{3}$/);
    expect(t.sample_pos).toBe(Math.floor(t.time_seconds * 48_000));
    expect(Object.keys(t).sort()).toEqual(
      ['playing', 'status', 'sample_pos', 'sample_rate', 'time_seconds', 'time_formatted', 'bpm', 'beat_pos', 'bar', 'beat_in_bar', 'beats_per_bar', 'timestamp_ms', 'version'].sort(),
    );

    await control(room.code, room.control_token, 'pause');
    const p1 = await transport(room.code);
    await sleep(60);
    const p2 = await transport(room.code);
    expect(p1.status).toBe('paused');
    expect(p2.sample_pos).toBe(p1.sample_pos);

    await control(room.code, room.control_token, 'resume');
    expect((await transport(room.code)).status).toBe('playing');

    const seek = await control(room.code, room.control_token, 'seek', { seconds: 90 });
    expect(seek.status).toBe(200);
    const s = await transport(room.code);
    expect(s.time_seconds).toBeGreaterThanOrEqual(90);
    expect(s.time_seconds).toBeLessThan(90.2);

    await control(room.code, room.control_token, 'stop');
    expect(await transport(room.code)).toMatchObject({ status: 'stopped', sample_pos: 0, playing: false });
  });

  it('accepts a bare POST with no body and no content type, as curl sends it', async () => {
    const room = await createRoom();
    const res = await api(`/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}` } });
    expect(res.status).toBe(200);
  });

  it('seeks by samples and by beats on the room grid', async () => {
    const room = await createRoom({ bpm: 120 });
    await control(room.code, room.control_token, 'seek', { samples: 96_000 });
    expect((await transport(room.code)).sample_pos).toBe(96_000);
    await control(room.code, room.control_token, 'seek', { beats: 8 });
    const t = await transport(room.code);
    expect(t.sample_pos).toBe(4 * 48_000);
    expect(t).toMatchObject({ bar: 3, beat_in_bar: 1 });
  });

  it('changes tempo mid-play without moving the playhead', async () => {
    const room = await createRoom({ bpm: 120 });
    await control(room.code, room.control_token, 'play');
    await sleep(100);
    const res = await control(room.code, room.control_token, 'tempo', { bpm: 60 });
    const { anchor } = await res.json<{ anchor: { beat_origin_sample: number; beat_origin_beat: number; sample: number; bpm: number } }>();
    expect(anchor.bpm).toBe(60);
    expect(anchor.beat_origin_sample).toBe(anchor.sample);
    // Beat continuity: the beat at the change equals the old grid's beat there.
    expect(anchor.beat_origin_beat).toBeCloseTo((anchor.sample / 48_000) * 2, 6);
  });

  it('starts on the next bar line so every client starts together', async () => {
    const room = await createRoom({ bpm: 240 }); // 1 s bars
    const before = Date.now();
    const res = await control(room.code, room.control_token, 'play', { at: 'next_bar' });
    const { anchor } = await res.json<{ anchor: { server_ms: number; status: string } }>();
    expect(anchor.status).toBe('playing');
    expect(anchor.server_ms % 1000).toBe(0);
    expect(anchor.server_ms).toBeGreaterThanOrEqual(before + 100);
    expect(anchor.server_ms - before).toBeLessThanOrEqual(1200);
    expect((await transport(room.code)).sample_pos).toBe(0);
  });

  it('starts at a given server time, and refuses one too far ahead or behind', async () => {
    const room = await createRoom();
    const at = Date.now() + 500;
    const ok = await control(room.code, room.control_token, 'play', { at });
    expect((await ok.json<{ anchor: { server_ms: number } }>()).anchor.server_ms).toBe(at);
    await control(room.code, room.control_token, 'stop');
    expect((await control(room.code, room.control_token, 'play', { at: Date.now() + 120_000 })).status).toBe(400);
    expect((await control(room.code, room.control_token, 'play', { at: Date.now() - 60_000 })).status).toBe(400);
  });

  it('reports a repeated command as unchanged without bumping the version', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'play');
    const again = await (await control(room.code, room.control_token, 'play')).json<{ changed: boolean; transport: { version: number } }>();
    expect(again).toMatchObject({ changed: false, transport: { version: 2 } });
  });

  it('refuses control without the token, with a wrong one, or with another room\'s', async () => {
    const room = await createRoom();
    const other = await createRoom();
    for (const token of [null, 'wrong', other.control_token]) {
      const res = await control(room.code, token, 'play', undefined, '10.3.3.3');
      expect(res.status).toBe(401);
      expect((await res.json<{ error: { code: string; message: string } }>()).error).toMatchObject({ code: 'unauthorized' });
    }
    expect((await transport(room.code)).status).toBe('stopped');
  });

  it('checks the token before the body: a wrong token with a broken body is 401, not 400', async () => {
    const room = await createRoom();
    const res = await api(`/api/v1/rooms/${room.code}/transport/seek`, {
      method: 'POST',
      body: '{"seconds":',
      headers: { authorization: 'Bearer wrong', 'content-type': 'application/json', 'cf-connecting-ip': '10.4.4.4' },
    });
    expect(res.status).toBe(401);
  });

  it('answers every malformed body with a typed 4xx and keeps the room state', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'seek', { seconds: 10 });
    const before = await transport(room.code);
    const cases: Array<[string, string, number, string]> = [
      ['seek', '{}', 400, 'bad_request'],
      ['seek', '{"seconds":1,"beats":2}', 400, 'bad_request'],
      ['seek', '{"seconds":-1}', 400, 'bad_request'],
      ['seek', '{"seconds":"NaN"}', 400, 'bad_request'],
      ['seek', '{"seconds":1e308}', 400, 'bad_request'],
      ['seek', '{"seconds":', 400, 'bad_json'],
      ['tempo', '{"bpm":0}', 400, 'bad_request'],
      ['tempo', '{"bpm":1e9}', 400, 'bad_request'],
      ['tempo', '{}', 400, 'bad_request'],
      ['play', '{"at":"later"}', 400, 'bad_request'],
      ['stop', '{"now":true}', 400, 'bad_request'],
      ['rewind', '{}', 404, 'not_found'],
    ];
    for (const [op, body, status, code] of cases) {
      const res = await api(`/api/v1/rooms/${room.code}/transport/${op}`, {
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' },
      });
      expect(res.status, `${op} ${body}`).toBe(status);
      expect((await res.json<{ error: { code: string } }>()).error.code, `${op} ${body}`).toBe(code);
    }
    const huge = await api(`/api/v1/rooms/${room.code}/transport/seek`, {
      method: 'POST',
      body: JSON.stringify({ seconds: 1, pad: 'x'.repeat(20_000) }),
      headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' },
    });
    expect(huge.status).toBe(413);
    const wrongType = await api(`/api/v1/rooms/${room.code}/transport/seek`, {
      method: 'POST',
      body: '<seek/>',
      headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/xml' },
    });
    expect(wrongType.status).toBe(415);
    const after = await transport(room.code);
    expect(after.version).toBe(before.version);
    expect(after.sample_pos).toBe(before.sample_pos);
  });
});

describe('metrics', () => {
  it('counts connections by role, messages, state changes and sync requests', async () => {
    const room = await createRoom();
    await control(room.code, room.control_token, 'play');
    await control(room.code, room.control_token, 'pause');
    const m = await (await api(`/api/v1/rooms/${room.code}/metrics`)).json<Record<string, unknown>>();
    expect(m).toMatchObject({ code: room.code, state_changes: 2, version: 3, connections: { viewer: 0, controller: 0, agent: 0, total: 0 } });
    expect(m.uptime_s).toBeGreaterThanOrEqual(0);
  });
});
