import { beforeAll, describe, expect, it } from 'vitest';
import { env, evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { api, sleep } from './helpers.ts';
import { ADMIN, RATE, ingest, track, uploadWav } from './match-fixtures.ts';
import { loadKissFFT } from '../../wasm/kissfft-workerd.ts';
import { FINGERPRINT_PRESETS, MemoryIndex, fingerprintSignal, type IndexRows } from '../../wasm/fingerprint/index.ts';
import { lookupCatalog, shardCount, shardStub } from '../../src/lib/catalog.ts';
import type { CatalogShard } from '../../src/durable/catalog-shard.ts';
import { FINGERPRINT_VERSION, type IngestAccepted, type Track, type TrackList } from '../../src/protocol/index.ts';

function postJson(body: unknown, headers: Record<string, string> = ADMIN): Promise<Response> {
  return api('/api/v1/catalog/tracks?wait=1', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

/** Catalog rows as sorted hash/track/time strings: answers compare whatever order they come in. */
function rowsOf(r: IndexRows): string[] {
  return Array.from(r.hashes, (h, i) => `${h}/${r.tracks[i]}/${r.times[i]}`).sort();
}

let first: IngestAccepted;

beforeAll(async () => {
  first = await ingest(track(1), 'First Light', 'The Testers');
}, 60_000);

describe('catalog ingestion', () => {
  it('ingests a WAV body with its metadata and reports the finished track', () => {
    expect(first.track).toMatchObject({ title: 'First Light', artist: 'The Testers', status: 'ready' });
    expect(first.track.duration_s).toBeCloseTo(20, 1);
    expect(first.track.fingerprints).toBeGreaterThan(20 * 30);
    expect(first.job_id).toMatch(/^job_/);
  });

  it('spreads a track over every shard by hash prefix', async () => {
    const counts = await Promise.all(Array.from({ length: shardCount(env) }, (_, i) => shardStub(env, i).landmarkCount()));
    expect(counts.length).toBe(4);
    for (const n of counts) expect(n).toBeGreaterThan(first.track.fingerprints / 8);
  });

  it('answers 202 with a job whose stream reports progress up to completion', async () => {
    const res = await uploadWav(track(2, 12), 'Second Wind', { wait: false });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as IngestAccepted;
    expect(accepted.stream_url).toMatch(/^ws.*\/api\/v1\/jobs\/job_/);
    let status: { state: string; progress: number } = { state: '', progress: 0 };
    for (let i = 0; i < 100 && status.state !== 'completed'; i++) {
      await sleep(50);
      status = await (await api(`/api/v1/jobs/${accepted.job_id}`)).json();
    }
    expect(status.state).toBe('completed');
    expect(status.progress).toBe(100);
    const events = (await (await api(`/api/v1/jobs/${accepted.job_id}?after=0`)).json()) as { events: Array<{ type: string; stage?: string }> };
    const stages = events.events.filter((e) => e.type === 'progress').map((e) => e.stage);
    expect(stages).toContain('fingerprinting');
    expect(stages).toContain('storing');
    const t = (await (await api(`/api/v1/catalog/tracks/${accepted.track_id}`)).json()) as Track;
    expect(t.status).toBe('ready');
  });

  it('ingests fingerprints computed by a client with the same code', async () => {
    const x = track(3, 10);
    const fp = fingerprintSignal(await loadKissFFT(), FINGERPRINT_PRESETS.default, x, RATE);
    const res = await postJson({ title: 'Third Eye', duration_s: 10, fingerprint_version: FINGERPRINT_VERSION, hashes: Array.from(fp.hashes), times: Array.from(fp.times) });
    expect(res.status).toBe(201);
    const body = (await res.json()) as IngestAccepted;
    expect(body.track).toMatchObject({ title: 'Third Eye', artist: null, status: 'ready', duration_s: 10 });
    expect(body.track.fingerprints).toBe(new Set(Array.from(fp.hashes, (h, i) => `${h}:${fp.times[i]}`)).size);
  });

  it('lists tracks in id order with paging', async () => {
    const all = (await (await api('/api/v1/catalog/tracks')).json()) as TrackList;
    expect(all.tracks.length).toBeGreaterThanOrEqual(3);
    const ids = all.tracks.map((t) => t.track_id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const page = (await (await api('/api/v1/catalog/tracks?limit=1')).json()) as TrackList;
    expect(page.tracks).toHaveLength(1);
    expect(page.next_after).toBe(ids[0]);
    const rest = (await (await api(`/api/v1/catalog/tracks?after=${page.next_after}`)).json()) as TrackList;
    expect(rest.tracks[0].track_id).toBe(ids[1]);
  });
});

describe('catalog lookups', () => {
  it('answer the rows the in-memory index answers, across the shards, leaving out hashes with more rows than the cap', async () => {
    // Hashes above any the default fingerprint makes (its anchor bins end below 2^22 - 2^20),
    // so the tracks other tests ingest cannot add rows to them.
    const popular = 4_000_000;
    const made = [
      { hashes: [...Array.from({ length: 100 }, (_, i) => popular + 1 + i), ...Array(60).fill(popular)], times: [...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 60 }, (_, i) => 1000 + i)] },
      { hashes: [...Array.from({ length: 50 }, (_, i) => popular + 1 + i), ...Array(10).fill(popular)], times: [...Array.from({ length: 50 }, (_, i) => 500 + i), ...Array.from({ length: 10 }, (_, i) => 2000 + i)] },
    ];
    const reference = new MemoryIndex();
    for (const [k, m] of made.entries()) {
      const res = await postJson({ title: `Lookup ${k}`, duration_s: 60, fingerprint_version: FINGERPRINT_VERSION, ...m });
      expect(res.status).toBe(201);
      reference.add(((await res.json()) as IngestAccepted).track_id, m.hashes, m.times);
    }
    const query = [popular + 120, popular + 7, popular, ...Array.from({ length: 110 }, (_, i) => popular + 1 + i)];
    for (const cap of [48, 100]) {
      const got = await lookupCatalog(env, query, cap);
      expect(got.hashes).toBeInstanceOf(Uint32Array);
      expect(rowsOf(got)).toEqual(rowsOf(reference.lookup(query, cap)));
      // 70 rows of the popular hash: over the first cap, within the second.
      expect(Array.from(got.hashes).filter((h) => h === popular).length).toBe(cap === 48 ? 0 : 70);
      expect(got.hashes.length).toBe(150 + (cap === 48 ? 0 : 70));
    }
  });
});

describe("a shard's in-memory copy", () => {
  it('answers what SQLite answers, and follows inserts and removals', async () => {
    // A shard of its own, outside the routing, so no other test adds rows to it.
    const stub = env.CATALOG.get(env.CATALOG.idFromName('memory-copy-test'));
    const query = [7, 8, 9, 500, 123456, 4_000_000, 3, 7];
    const reference = new MemoryIndex();
    const check = async (cap: number) => {
      const both = await runInDurableObject(stub, async (shard: CatalogShard) => ({ memory: await shard.lookup(query, cap), stored: shard.lookupStored(query, cap) }));
      expect(rowsOf(both.memory)).toEqual(rowsOf(both.stored));
      expect(rowsOf(both.memory)).toEqual(rowsOf(reference.lookup(query, cap)));
      return rowsOf(both.memory);
    };
    expect(await check(48)).toEqual([]);
    const a = { hashes: [7, 7, 9, 500, 4_000_000, ...Array(5).fill(3)], times: [10, 20, 30, 40, 50, 1, 2, 3, 4, 5] };
    await stub.insert(1, a.hashes, a.times);
    reference.add(1, a.hashes, a.times);
    expect(await check(48)).toHaveLength(10);
    expect(await check(4)).toHaveLength(5);
    // Added after the copy was read: the next lookup sees it.
    const b = { hashes: [7, 8, 123456, 3], times: [11, 12, 13, 14] };
    await stub.insert(2, b.hashes, b.times);
    reference.add(2, b.hashes, b.times);
    expect(await check(48)).toHaveLength(14);
    expect(await check(5)).toHaveLength(8);
    // The same rows again, and a repeat within one call: stored once, as SQLite's key stores them.
    expect(await stub.insert(2, [...b.hashes, 8], [...b.times, 12])).toBe(0);
    expect(await check(48)).toHaveLength(14);
    // A new instance reads its copy from SQLite.
    await evictDurableObject(stub);
    expect(await check(48)).toHaveLength(14);
    expect(await check(5)).toHaveLength(8);
    await stub.removeTrack(1);
    reference.remove(1);
    expect(await check(48)).toEqual(['123456/2/13', '3/2/14', '7/2/11', '8/2/12']);
  });
});

describe('catalog deletion', () => {
  it('removes a track and every one of its landmarks', async () => {
    const t = await ingest(track(4, 8), 'Fourth Wall');
    const res = await api(`/api/v1/catalog/tracks/${t.track_id}`, { method: 'DELETE', headers: ADMIN });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ deleted: true, track_id: t.track_id, fingerprints_removed: t.track.fingerprints });
    expect((await api(`/api/v1/catalog/tracks/${t.track_id}`)).status).toBe(404);
    const fp = fingerprintSignal(await loadKissFFT(), FINGERPRINT_PRESETS.default, track(4, 8), RATE);
    for (let i = 0; i < shardCount(env); i++) {
      const rows = await shardStub(env, i).lookup(Array.from(fp.hashes));
      expect(Array.from(rows.tracks).filter((id) => id === t.track_id)).toEqual([]);
    }
    const again = await api(`/api/v1/catalog/tracks/${t.track_id}`, { method: 'DELETE', headers: ADMIN });
    expect(again.status).toBe(404);
  });
});

describe('catalog errors', () => {
  it('refuses writes without the admin token, or with a wrong one', async () => {
    const none = await api('/api/v1/catalog/tracks?title=x', { method: 'POST', headers: { 'content-type': 'audio/wav' }, body: new Uint8Array(100) });
    expect(none.status).toBe(401);
    const wrong = await api('/api/v1/catalog/tracks/1', { method: 'DELETE', headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(await errorCode(wrong)).toBe('unauthorized');
  });

  it('refuses a body that is neither WAV nor JSON', async () => {
    const res = await api('/api/v1/catalog/tracks?title=x', { method: 'POST', headers: { ...ADMIN, 'content-type': 'text/plain' }, body: 'hello' });
    expect(res.status).toBe(415);
  });

  it('refuses a WAV upload without a title, an empty body and a body that is not WAV', async () => {
    const noTitle = await api('/api/v1/catalog/tracks', { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: new Uint8Array(64) });
    expect(noTitle.status).toBe(400);
    const empty = await api('/api/v1/catalog/tracks?title=x', { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' } });
    expect(empty.status).toBe(400);
    const garbage = await api('/api/v1/catalog/tracks?title=x', { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: new TextEncoder().encode('RIFF....not a wave file at all') });
    expect(garbage.status).toBe(400);
    expect(await errorCode(garbage)).toBe('bad_request');
  });

  it('refuses a WAV shorter than one second', async () => {
    const res = await uploadWav(track(5, 0.5), 'Too Short');
    expect(res.status).toBe(400);
  });

  it('refuses a body larger than the limit from its declared length', async () => {
    const res = await api('/api/v1/catalog/tracks?title=x', { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav', 'content-length': String(200 * 1024 * 1024) }, body: new Uint8Array(10) });
    expect(res.status).toBe(413);
  });

  it('refuses fingerprints of another version, of unequal lengths, or out of range', async () => {
    const base = { title: 't', duration_s: 5, fingerprint_version: FINGERPRINT_VERSION, hashes: [1, 2], times: [0, 1] };
    expect((await postJson({ ...base, fingerprint_version: 'v0' })).status).toBe(400);
    expect((await postJson({ ...base, times: [0] })).status).toBe(400);
    expect((await postJson({ ...base, hashes: [2 ** 22, 1] })).status).toBe(400);
    expect((await postJson({ ...base, duration_s: -1 })).status).toBe(400);
    const bad = await api('/api/v1/catalog/tracks', { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: '{"title":' });
    expect(await errorCode(bad)).toBe('bad_json');
  });

  it('answers 404 for malformed and unknown track ids', async () => {
    expect((await api('/api/v1/catalog/tracks/abc')).status).toBe(404);
    expect((await api('/api/v1/catalog/tracks/999999')).status).toBe(404);
    expect((await api('/api/v1/catalog/tracks?limit=0')).status).toBe(400);
  });
});
