// Match streams are held to real time (plus a burst), and no error of the
// match, catalog or monitoring surface repeats what the client sent.
import { describe, expect, it } from 'vitest';
import { env } from 'cloudflare:test';
import { api } from './helpers.ts';
import { ADMIN, RATE, openMatch } from './match-fixtures.ts';
import { encodeWav } from '../../wasm/wav.ts';

describe('match streams are held to real time', () => {
  it('refuses audio beyond the burst allowance with a typed error, and the stream goes on', async () => {
    const burst = Number(env.MATCH_BURST_S);
    const s = await openMatch('too-fast');
    s.send({ type: 'hello', sample_rate: RATE, format: 'f32' });
    expect((await s.next('ready')).data.burst_s).toBe(burst);
    // Half a second of audio per frame, far more of it than the burst, all at once.
    const frames = Math.ceil((burst + 6) / 0.5);
    for (let i = 0; i < frames; i++) s.send(new Float32Array(RATE / 2).buffer);
    const e = await s.next('error');
    expect(e.code).toBe('rate_limited');
    expect(e.message).toMatch(/faster than real time/);
    s.send({ type: 'end' });
    const ended = await s.next('ended', 15_000);
    // What was accepted is the burst (and what the clock added meanwhile), not everything sent.
    expect(ended.data.audio_s).toBeGreaterThanOrEqual(burst - 0.5);
    expect(ended.data.audio_s).toBeLessThan(frames * 0.5);
    expect(s.closed).toBeNull();
    s.close();
  });
});

const MARK = 'ZQX<i>echo';

describe('errors name the problem, never the client input', () => {
  it('match stream frames', async () => {
    const s = await openMatch('no-echo');
    s.send({ type: MARK });
    s.send({ type: 'hello', sample_rate: MARK, format: MARK });
    s.send({ type: 'hello', sample_rate: 22050, format: 'f32', [MARK]: MARK });
    const errors = [await s.next('error'), await s.next('error')];
    expect(errors.map((e) => e.code)).toEqual(['unknown_type', 'bad_request']);
    for (const e of errors) expect(e.message).not.toContain('ZQX');
    s.close();
  });

  it('catalog and monitoring routes', async () => {
    const bodies: string[] = [];
    const json = (body: unknown) => api('/api/v1/catalog/tracks', { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    bodies.push(await (await json({ title: 'x', duration_s: MARK, fingerprint_version: MARK, hashes: [MARK], times: [], [MARK]: 1 })).text());
    // A WAV whose header claims an impossible sample rate: the rate is the client's value.
    const wav = encodeWav(new Float32Array(22050), 22050);
    new DataView(wav.buffer, wav.byteOffset).setUint32(24, 987654321, true);
    const bad = await api('/api/v1/catalog/tracks?title=t', { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: wav as Uint8Array<ArrayBuffer> });
    expect(bad.status).toBe(415);
    bodies.push((await bad.text()).replace(/987654321/g, 'ZQX'));
    bodies.push(await (await api(`/api/v1/catalog/tracks/${encodeURIComponent(MARK)}`)).text());
    bodies.push(await (await api(`/api/v1/catalog/tracks?after=${encodeURIComponent(MARK)}&limit=${encodeURIComponent(MARK)}`)).text());
    bodies.push(await (await api(`/api/v1/match/${encodeURIComponent(MARK)}`, { headers: { upgrade: 'websocket' } })).text());
    bodies.push(await (await api(`/api/v1/monitoring/live-streams/${encodeURIComponent(MARK)}`, { headers: ADMIN })).text());
    bodies.push(await (await api(`/api/v1/monitoring/live-streams/${encodeURIComponent(MARK)}`, { method: 'DELETE', headers: ADMIN })).text());
    for (const b of bodies) {
      expect(JSON.parse(b).error.code).toBeTruthy();
      expect(b).not.toContain('ZQX');
    }
  });
});
