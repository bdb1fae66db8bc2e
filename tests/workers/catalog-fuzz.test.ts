// Property-based: catalog uploads (JSON fingerprints, WAV files with broken
// headers), list queries and track ids, and WAV bodies for POST /analyze,
// are answered with a success or a typed 4xx, never a 500; the catalog holds
// exactly the tracks that were accepted.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { api } from './helpers.ts';
import { ERROR_STATUS, FINGERPRINT_VERSION, type TrackList } from '../../src/protocol/index.ts';

const ERROR_CODES = Object.keys(ERROR_STATUS);
const ADMIN = { authorization: 'Bearer test-admin-token' };

async function typedError(res: Response, context: string): Promise<string> {
  expect(res.status, context).toBeGreaterThanOrEqual(400);
  expect(res.status, context).toBeLessThan(500);
  const body = await res.json<{ error: { code: string; message: string } }>();
  expect(ERROR_CODES).toContain(body.error.code);
  expect(ERROR_STATUS[body.error.code as keyof typeof ERROR_STATUS]).toBe(res.status);
  return body.error.code;
}

async function allTrackIds(): Promise<number[]> {
  const res = await api('/api/v1/catalog/tracks?limit=1000');
  expect(res.status).toBe(200);
  return (await res.json<TrackList>()).tracks.map((t) => t.track_id);
}

/** A RIFF/WAVE file whose header fields are anything at all, followed by a few bytes of "samples". */
/** Mostly the valid value, sometimes anything: so most files get past the first check and break further in. */
const usually = <T,>(valid: T, other: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: other });

const wavish = fc
  .record({
    riff: usually('RIFF', fc.constantFrom('RIFX', 'RF64', 'JUNK')),
    riffSize: usually(0xffff, fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(-1))),
    wave: usually('WAVE', fc.constant('AVI ')),
    fmtSize: usually(16, fc.constantFrom(18, 40, 0, 2, 1000)),
    format: usually(1, fc.constantFrom(3, 0xfffe, 2, 7, 0)),
    channels: usually(1, fc.integer({ min: 0, max: 70 })),
    rate: usually(8000, fc.oneof(fc.constantFrom(0, 1, 2, 44_100, 800_000), fc.integer({ min: 0, max: 0xffffffff }))),
    bits: usually(16, fc.constantFrom(0, 1, 8, 12, 24, 32, 64, 65535)),
    blockAlign: usually(2, fc.integer({ min: 0, max: 300 })),
    dataSize: usually(-1, fc.integer({ min: 0, max: 0xffffffff })),
    data: fc.uint8Array({ maxLength: 512 }),
    cut: usually(null, fc.integer({ min: 0, max: 80 })),
  })
  .map((h) => {
    const fmtBody = Math.max(16, Math.min(h.fmtSize, 40));
    const out = new Uint8Array(12 + 8 + fmtBody + 8 + h.data.length);
    const v = new DataView(out.buffer);
    const tag = (o: number, s: string) => [...s].forEach((c, i) => (out[o + i] = c.charCodeAt(0)));
    tag(0, h.riff);
    v.setUint32(4, h.riffSize >>> 0, true);
    tag(8, h.wave);
    tag(12, 'fmt ');
    v.setUint32(16, h.fmtSize, true);
    v.setUint16(20, h.format, true);
    v.setUint16(22, h.channels & 0xffff, true);
    v.setUint32(24, h.rate >>> 0, true);
    v.setUint32(28, (h.rate * h.blockAlign) >>> 0, true);
    v.setUint16(32, h.blockAlign, true);
    v.setUint16(34, h.bits, true);
    const d = 20 + fmtBody;
    tag(d, 'data');
    v.setUint32(d + 4, (h.dataSize < 0 ? h.data.length : h.dataSize) >>> 0, true);
    out.set(h.data, d + 8);
    return h.cut === null ? out : out.subarray(0, h.cut);
  });

describe('catalog input, property-based', () => {
  it('answers every JSON upload with a success or a typed 4xx, and keeps exactly the tracks it accepted', async () => {
    const before = await allTrackIds();
    const accepted: number[] = [];
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 100 }),
      fc
        .record(
          {
            title: fc.oneof(fc.string({ maxLength: 210 }), fc.integer(), fc.constant('  ')),
            artist: fc.oneof(fc.string({ maxLength: 20 }), fc.constant(null)),
            duration_s: fc.oneof(fc.double(), fc.integer({ min: -1, max: 20_000 })),
            fingerprint_version: fc.constantFrom(FINGERPRINT_VERSION, 'v0', 1),
            hashes: fc.array(fc.oneof(fc.integer({ min: -1, max: 2 ** 32 }), fc.double()), { maxLength: 20 }),
            times: fc.array(fc.oneof(fc.integer({ min: -1, max: 2 ** 31 }), fc.double()), { maxLength: 20 }),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await api('/api/v1/catalog/tracks?wait=1', { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: b });
        if (res.status === 201) accepted.push((await res.json<{ track_id: number }>()).track_id);
        else await typedError(res, b.slice(0, 120));
      }),
      { numRuns: 100 },
    );
    expect(await allTrackIds()).toEqual([...before, ...accepted].sort((a, b) => a - b));
  });

  it('answers every WAV upload with broken headers and odd metadata with a success or a typed 4xx', async () => {
    const before = await allTrackIds();
    const accepted: number[] = [];
    const meta = fc.record({ title: fc.oneof(fc.string({ maxLength: 210 }), fc.constant('')), artist: fc.string({ maxLength: 10 }), wait: fc.constantFrom('1', 'true', 'maybe') }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(wavish, meta, fc.constantFrom('audio/wav', 'audio/x-wav', 'application/octet-stream', 'video/mp4'), async (wav, q, type) => {
        const res = await api(`/api/v1/catalog/tracks?${new URLSearchParams(q as Record<string, string>)}`, { method: 'POST', headers: { ...ADMIN, 'content-type': type }, body: wav });
        const context = `${type} ${JSON.stringify(q)} ${Buffer.from(wav.subarray(0, 48)).toString('hex')}`;
        if (res.status === 201 || res.status === 202) accepted.push((await res.json<{ track_id: number }>()).track_id);
        else await typedError(res, context);
      }),
      { numRuns: 100 },
    );
    // Tracks accepted without ?wait may still be ingesting, but they are listed from the start.
    expect(await allTrackIds()).toEqual([...before, ...accepted].sort((a, b) => a - b));
  });

  it('answers every list query and track id with 200, 404 or a typed 400', async () => {
    const token = fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.double().map(String), fc.constantFrom('0', '1', '1000', '1001', '1e3', '-1', ''));
    await fc.assert(
      fc.asyncProperty(token, token, fc.constantFrom('GET', 'DELETE'), async (after, limit, method) => {
        const list = await api(`/api/v1/catalog/tracks?after=${encodeURIComponent(after)}&limit=${encodeURIComponent(limit)}`);
        if (list.status !== 200) expect(await typedError(list, `${after} ${limit}`)).toBe('bad_request');
        // Ids that do not name a track (or are not ids at all) are 404 for reads and deletes alike.
        const one = await api(`/api/v1/catalog/tracks/${encodeURIComponent(after)}9999999`, { method, headers: ADMIN });
        if (one.status !== 200) expect(await typedError(one, after)).toBe('not_found');
      }),
      { numRuns: 80 },
    );
  });

  it('answers every WAV body sent to POST /analyze with a document or a typed 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(wavish, fc.uint8Array({ maxLength: 64 })), async (wav) => {
        const res = await api('/api/v1/analyze', { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: wav });
        if (res.status === 200) expect(await res.json()).toBeTypeOf('object');
        else await typedError(res, Buffer.from(wav.subarray(0, 48)).toString('hex'));
      }),
      { numRuns: 100 },
    );
  });
});
