import { beforeAll, describe, expect, it } from 'vitest';
import { api, sleep } from './helpers.ts';
import { ADMIN, RATE, ingest, openMatch, track, type MatchSocket } from './match-fixtures.ts';
import { Resampler } from '../../wasm/fingerprint/resampler.ts';
import { MATCH_PRESETS } from '../../wasm/fingerprint/config.ts';
import { addNoise, synthMusic, telephone } from '../../wasm/fingerprint/test-signals.ts';
import type { IngestAccepted, LiveStreamDetail, LiveStreamSummary } from '../../src/protocol/index.ts';

const tracks: Float32Array[] = [];
const ingested: IngestAccepted[] = [];

beforeAll(async () => {
  for (const [i, title] of ['Alpha', 'Bravo', 'Charlie'].entries()) {
    tracks.push(track(200 + i, 24));
    ingested.push(await ingest(tracks[i], title, 'Synth Ensemble'));
  }
}, 60_000);

function excerpt(i: number, startS: number, seconds: number): Float32Array {
  return tracks[i].slice(Math.round(startS * RATE), Math.round((startS + seconds) * RATE));
}

async function hello(s: MatchSocket, sample_rate = RATE, format: 'f32' | 's16' = 'f32') {
  s.send({ type: 'hello', sample_rate, format });
  return s.next('ready');
}

describe('live identification', () => {
  it('identifies a clean excerpt with its track, offset and the audio it took', async () => {
    const s = await openMatch('clean-1');
    await hello(s);
    s.sendAudio(excerpt(1, 6, 8));
    const m = await s.next('match');
    expect(m.data).toMatchObject({ track_id: ingested[1].track_id, title: 'Bravo', artist: 'Synth Ensemble', speed: 1 });
    expect(Math.abs(m.data.offset_s - 6)).toBeLessThan(0.06);
    expect(m.data.audio_s).toBeGreaterThan(0);
    expect(m.data.audio_s).toBeLessThanOrEqual(3);
    expect(m.data.confidence).toBeGreaterThan(0);
    s.send({ type: 'end' });
    const ended = await s.next('ended');
    expect(ended.data.state).toBe('matched');
    expect(ended.data.audio_s).toBeCloseTo(8, 1);
    s.close();
  });

  it('identifies s16 audio at 44.1 kHz, noisy and band-limited', async () => {
    const s = await openMatch('s16-1');
    await hello(s, 44100, 's16');
    const q = Resampler.convert(telephone(addNoise(excerpt(2, 9, 10), 5, 4), RATE), RATE, 44100);
    s.sendAudio(q, 's16', 4410);
    const m = await s.next('match');
    expect(m.data.track_id).toBe(ingested[2].track_id);
    expect(Math.abs(m.data.offset_s - 9)).toBeLessThan(0.06);
    s.close();
  });

  it('sends status frames while listening and reports no match for music outside the catalog', async () => {
    const s = await openMatch('negative-1');
    await hello(s);
    s.sendAudio(synthMusic(4242, 8, RATE, 3));
    s.send({ type: 'end' });
    const ended = await s.next('ended');
    expect(ended.data).toMatchObject({ state: 'listening', match: null });
    expect(s.messages.filter((m) => m.type === 'status').length).toBeGreaterThanOrEqual(3);
    expect(s.messages.some((m) => m.type === 'match')).toBe(false);
    s.close();
  });

  it('reports no match for silence', async () => {
    const s = await openMatch('silence-1');
    await hello(s);
    s.sendAudio(new Float32Array(RATE * 5));
    s.send({ type: 'end' });
    expect((await s.next('ended')).data.match).toBeNull();
    s.close();
  });

  it('reports a new match when the stream changes track', async () => {
    const s = await openMatch('change-1');
    await hello(s);
    const q = new Float32Array(RATE * 26);
    q.set(excerpt(0, 2, 13));
    q.set(excerpt(2, 4, 13), RATE * 13);
    s.sendAudio(q);
    s.send({ type: 'end' });
    await s.next('ended', 15000);
    const matches = s.messages.filter((m) => m.type === 'match').map((m) => m.data.track_id);
    expect(matches).toEqual([ingested[0].track_id, ingested[2].track_id]);
    s.close();
  });

  it('stops identifying a track once it is deleted from the catalog', async () => {
    const t = await ingest(track(300, 12), 'Delta');
    const before = await openMatch('delete-1');
    await hello(before);
    before.sendAudio(track(300, 12).subarray(RATE * 2, RATE * 8));
    expect((await before.next('match')).data.track_id).toBe(t.track_id);
    before.close();
    expect((await api(`/api/v1/catalog/tracks/${t.track_id}`, { method: 'DELETE', headers: ADMIN })).status).toBe(200);
    const after = await openMatch('delete-2');
    await hello(after);
    after.sendAudio(track(300, 12).subarray(RATE * 2, RATE * 8));
    after.send({ type: 'end' });
    expect((await after.next('ended')).data.match).toBeNull();
    after.close();
  });
});

describe('match stream errors', () => {
  it('answers every kind of bad input with a typed error and keeps the socket open', async () => {
    const s = await openMatch('bad-input');
    s.send(new Float32Array(100).buffer);
    expect((await s.next('error')).code).toBe('invalid_state');
    s.send('{not json');
    expect((await s.next('error')).code).toBe('bad_json');
    s.send({ type: 'dance' });
    expect((await s.next('error')).code).toBe('unknown_type');
    s.send({ type: 'hello', sample_rate: 100 });
    expect((await s.next('error')).code).toBe('bad_request');
    s.send({ type: 'hello', sample_rate: 22050, format: 'u8' });
    expect((await s.next('error')).code).toBe('bad_request');
    s.send('x'.repeat(5000));
    expect((await s.next('error')).code).toBe('too_large');
    await hello(s);
    s.send({ type: 'hello', sample_rate: 22050 });
    expect((await s.next('error')).code).toBe('invalid_state');
    s.send(new Uint8Array(7).buffer);
    expect((await s.next('error')).code).toBe('bad_request');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      s.send(new Float32Array([0, 0.5, bad, 0]).buffer);
      expect((await s.next('error')).code).toBe('bad_request');
    }
    s.send(new Float32Array(70_000).buffer);
    expect((await s.next('error')).code).toBe('too_large');
    s.sendAudio(new Float32Array(2205));
    s.send({ type: 'end' });
    expect((await s.next('ended')).data.audio_s).toBeCloseTo(0.1, 3);
    expect(s.closed).toBeNull();
    s.close();
  });

  it('refuses malformed client ids and requests that are not upgrades', async () => {
    expect((await api('/api/v1/match/not%20valid', { headers: { upgrade: 'websocket' } })).status).toBe(400);
    expect((await api('/api/v1/match/fine-id')).status).toBe(426);
  });

  it('closes the previous connection when the same client id connects again', async () => {
    const a = await openMatch('twice');
    const b = await openMatch('twice');
    expect((await a.closedWith()).code).toBe(4002);
    await hello(b);
    b.close();
  });
});

describe('monitoring of live streams', () => {
  it('lists live streams with their match, details one, and disconnects it', async () => {
    const s = await openMatch('monitored');
    await hello(s);
    s.sendAudio(excerpt(0, 3, 6));
    await s.next('match');
    let listed: LiveStreamSummary | undefined;
    for (let i = 0; i < 50 && !listed?.match; i++) {
      const res = await api('/api/v1/monitoring/live-streams', { headers: ADMIN });
      listed = ((await res.json()) as { streams: LiveStreamSummary[] }).streams.find((x) => x.client_id === 'monitored');
      if (!listed?.match) await sleep(20);
    }
    expect(listed).toMatchObject({ client_id: 'monitored', sample_rate: RATE, format: 'f32' });
    expect(listed!.match!.track_id).toBe(ingested[0].track_id);
    const detail = (await (await api('/api/v1/monitoring/live-streams/monitored', { headers: ADMIN })).json()) as LiveStreamDetail;
    expect(detail.audio_s).toBeGreaterThan(0);
    expect(detail.landmarks).toBeGreaterThan(0);
    expect(detail.matches_reported).toBe(1);
    const del = await api('/api/v1/monitoring/live-streams/monitored', { method: 'DELETE', headers: ADMIN });
    expect(del.status).toBe(200);
    expect((await s.closedWith()).code).toBe(4000);
    const after = (await (await api('/api/v1/monitoring/live-streams', { headers: ADMIN })).json()) as { streams: LiveStreamSummary[] };
    expect(after.streams.some((x) => x.client_id === 'monitored')).toBe(false);
    expect((await api('/api/v1/monitoring/live-streams/monitored', { headers: ADMIN })).status).toBe(404);
  });

  /** Streams `audio` to its end on a new stream, and reads the stream's monitoring detail before closing it. */
  const streamToEnd = async (id: string, audio: Float32Array) => {
    const s = await openMatch(id);
    await hello(s);
    s.sendAudio(audio);
    s.send({ type: 'end' });
    await s.next('ended', 15000);
    const detail = (await (await api(`/api/v1/monitoring/live-streams/${id}`, { headers: ADMIN })).json()) as LiveStreamDetail;
    s.close();
    return { detail, matches: s.messages.filter((m) => m.type === 'match') };
  };

  it('counts lookups, and looks the catalog up less often and under one speed hypothesis once the track is known', async () => {
    const rounds = async (id: string, audio: Float32Array) => {
      const { detail, matches } = await streamToEnd(id, audio);
      return { detail, matched: matches.length > 0 };
    };
    // 10 s in 0.1 s frames: twenty 0.5 s batches while nothing is known.
    const unknown = await rounds('rounds-unknown', synthMusic(4243, 10, RATE, 3));
    expect(unknown.matched).toBe(false);
    expect(unknown.detail.lookup_rounds).toBeGreaterThanOrEqual(18);
    expect(unknown.detail.lookups).toBeGreaterThan(unknown.detail.lookup_rounds);
    // One hundred frames of 0.1 s (the fixture's frame), counted as they arrive.
    expect(unknown.detail.frames).toBe(100);
    // Unknown: every speed hypothesis is searched.
    expect(unknown.detail.speeds_searched).toBe(MATCH_PRESETS.default.speeds.length);
    // Matched within 3 s (at most six short batches), then 2 s batches.
    const known = await rounds('rounds-known', excerpt(1, 4, 10));
    expect(known.matched).toBe(true);
    expect(known.detail.lookup_rounds).toBeLessThanOrEqual(10);
    // Known: only the decision's speed.
    expect(known.detail.speeds_searched).toBe(1);
  });

  it('looks the catalog up less often after a vote window of unknown audio, and still matches the next track as soon', async () => {
    const q = new Float32Array(RATE * 26);
    q.set(synthMusic(4244, 20, RATE, 3));
    q.set(excerpt(0, 4, 6), RATE * 20);
    const { detail, matches } = await streamToEnd('rounds-long-unknown', q);
    expect(matches.map((m) => m.data.track_id)).toEqual([ingested[0].track_id]);
    expect(Math.abs(matches[0].data.offset_s - (4 - 20))).toBeLessThan(0.06);
    // Decided within 3 s of the track starting, as on a fresh stream: batches change when a decision arrives, not what it is.
    expect(matches[0].data.audio_s).toBeGreaterThan(20);
    expect(matches[0].data.audio_s).toBeLessThanOrEqual(23);
    // 24 half-second batches in the first 12 s, then 2 s ones: 30. 1 s batches past the window made 35, 0.5 s ones 45.
    expect(detail.lookup_rounds).toBeGreaterThanOrEqual(26);
    expect(detail.lookup_rounds).toBeLessThanOrEqual(32);
  });

  it('advises the frame it matches in: half a second while a decision may be near, 2 s once nothing has been known for a vote window or the track is known', async () => {
    const s = await openMatch('advice-1');
    expect((await hello(s)).data.frame_s).toBe(0.5);
    const q = new Float32Array(RATE * 26);
    q.set(synthMusic(4245, 20, RATE, 3));
    q.set(excerpt(1, 4, 6), RATE * 20);
    s.sendAudio(q);
    s.send({ type: 'end' });
    const ended = await s.next('ended', 15000);
    const statuses = s.messages.filter((m) => m.type === 'status').map((m) => m.data);
    // Told as soon as it changes: the first status past 12 s of unknown audio says 2 s.
    const firstLong = statuses.find((d) => d.frame_s === 2)!;
    expect(firstLong.audio_s).toBeGreaterThanOrEqual(MATCH_PRESETS.default.windowS);
    expect(firstLong.audio_s).toBeLessThan(MATCH_PRESETS.default.windowS + 2.1);
    for (const d of statuses) expect(d.frame_s).toBe(d.audio_s < MATCH_PRESETS.default.windowS ? 0.5 : 2);
    expect(s.messages.find((m) => m.type === 'match')?.data.track_id).toBe(ingested[1].track_id);
    expect(ended.data.frame_s).toBe(2);
    s.close();
    // A decision is news at once too: the status after the batch that decided, not the next one due every 2 s.
    const known = await openMatch('advice-3');
    await hello(known);
    // A second of silence first, so the deciding batch does not end where a periodic status falls (every 2 s of audio).
    const q2 = new Float32Array(RATE * 7);
    q2.set(excerpt(2, 3, 6), RATE);
    known.sendAudio(q2);
    known.send({ type: 'end' });
    await known.next('ended');
    const m = known.messages.flatMap((x) => (x.type === 'match' ? [x.data] : []))[0];
    const told = known.messages.flatMap((x) => (x.type === 'status' && x.data.frame_s === 2 ? [x.data] : []))[0];
    const decidingBatchEnd = Math.ceil(m.audio_s / 0.5) * 0.5;
    expect(decidingBatchEnd % 2, `decided at ${m.audio_s}`).not.toBe(0);
    expect(told.audio_s).toBe(decidingBatchEnd);
    known.close();
    // 2 s of 192 kHz f32 would not fit a frame: the advice is the longest frame that does.
    const hi = await openMatch('advice-2');
    expect((await hello(hi, 192_000)).data.frame_s).toBe(0.3);
    hi.close();
  });

  it('refuses monitoring without the admin token', async () => {
    expect((await api('/api/v1/monitoring/live-streams')).status).toBe(401);
    expect((await api('/api/v1/monitoring/live-streams/x', { method: 'DELETE', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await api('/api/v1/monitoring/live-streams/nobody', { method: 'DELETE', headers: ADMIN })).status).toBe(404);
  });
});
