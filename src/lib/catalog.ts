// The fingerprint catalog seen from the worker and from MatchStream objects:
// which shard holds a hash, lookups fanned out to the shards, and ingestion
// (fingerprint, store, register) publishing its progress as a job.
//
// Routing: a landmark hash is mixed (Knuth's multiplicative hash) and the top
// bits of the mix, its prefix, pick one of CATALOG_SHARDS shards. Mixing first
// spreads the hash space evenly even though raw hashes cluster at low
// frequencies. Changing CATALOG_SHARDS re-routes every hash, so a catalog is
// re-ingested after a change.
import type { Env } from '../worker/env.ts';
import { numberVar } from './env-vars.ts';
import { loadKissFFT } from '../../wasm/kissfft-workerd.ts';
import { FINGERPRINT_PRESETS, StreamFingerprinter, type IndexRows } from '../../wasm/fingerprint/index.ts';
import { RoomtoneError, type Track } from '../protocol/index.ts';
import type { JobPublisher } from './jobs.ts';

export const MAX_SHARDS = 256;

export function shardCount(env: Env): number {
  return Math.min(MAX_SHARDS, Math.floor(numberVar(env.CATALOG_SHARDS, 4)));
}

export function shardOf(hash: number, shards: number): number {
  const mixed = Math.imul(hash, 0x9e3779b1) >>> 0;
  return Math.floor((mixed / 4294967296) * shards);
}

export function shardStub(env: Env, index: number) {
  return env.CATALOG.get(env.CATALOG.idFromName(`shard-${index}`));
}

/** The track registry lives in shard 0. */
export function registry(env: Env) {
  return shardStub(env, 0);
}

/**
 * Each shard's share of `hashes` (and of `times`, when given), as typed
 * arrays: an RPC copies those whole, where it clones a number[] element by
 * element. Shards are counted first, so every array has its exact size.
 */
function split(hashes: ArrayLike<number>, times: ArrayLike<number> | null, shards: number) {
  const shardOfRow = new Uint16Array(hashes.length);
  const counts = new Uint32Array(shards);
  for (let i = 0; i < hashes.length; i++) counts[(shardOfRow[i] = shardOf(hashes[i], shards))]++;
  const parts = Array.from(counts, (n) => ({ hashes: new Uint32Array(n), times: new Int32Array(times ? n : 0), n: 0 }));
  for (let i = 0; i < hashes.length; i++) {
    const p = parts[shardOfRow[i]];
    p.hashes[p.n] = hashes[i];
    if (times) p.times[p.n] = times[i];
    p.n++;
  }
  return parts;
}

/** Catalog rows of the given hashes, from all shards in parallel (a hash's rows all live in one shard, so the cap is exact). */
export async function lookupCatalog(env: Env, hashes: ArrayLike<number>, maxRowsPerHash?: number): Promise<IndexRows> {
  const parts = split(hashes, null, shardCount(env));
  const results = await Promise.all(parts.map((p, i) => (p.hashes.length ? shardStub(env, i).lookup(p.hashes, maxRowsPerHash) : null)));
  let rows = 0;
  for (const r of results) rows += r ? r.hashes.length : 0;
  const out = { hashes: new Uint32Array(rows), tracks: new Int32Array(rows), times: new Int32Array(rows) };
  let at = 0;
  for (const r of results) {
    if (!r) continue;
    out.hashes.set(r.hashes, at);
    out.tracks.set(r.tracks, at);
    out.times.set(r.times, at);
    at += r.hashes.length;
  }
  return out;
}

/** Stores a track's landmarks across the shards; `onShard` hears each shard finish. */
export async function storeLandmarks(
  env: Env,
  track: number,
  hashes: ArrayLike<number>,
  times: ArrayLike<number>,
  onShard?: (done: number, total: number) => Promise<void>,
): Promise<number> {
  const parts = split(hashes, times, shardCount(env));
  let done = 0;
  let stored = 0;
  await Promise.all(
    parts.map(async (p, i) => {
      // Read-modify-write after the await: `stored += await …` would read `stored` before it.
      const n = p.hashes.length ? await shardStub(env, i).insert(track, p.hashes, p.times) : 0;
      stored += n;
      done++;
      await onShard?.(done, parts.length);
    }),
  );
  return stored;
}

export async function removeLandmarks(env: Env, track: number): Promise<number> {
  const n = shardCount(env);
  const removed = await Promise.all(Array.from({ length: n }, (_, i) => shardStub(env, i).removeTrack(track)));
  return removed.reduce((a, b) => a + b, 0);
}

export type IngestSource =
  | { kind: 'audio'; samples: Float32Array; sample_rate: number }
  | { kind: 'fingerprints'; hashes: number[]; times: number[]; duration_s: number };

/** Progress of each stage, in percent of the whole job. */
const STAGE = { fingerprinting: 10, storing: 50, done: 100 } as const;

/**
 * Fingerprints (when given audio), stores and registers one track. Reports to
 * `publisher` when there is one; on failure marks the track failed, reports
 * the job's error, and rethrows.
 */
export async function ingestTrack(env: Env, track: Track, source: IngestSource, publisher: JobPublisher | null, resultUrl?: string): Promise<Track> {
  const reg = registry(env);
  try {
    let hashes: ArrayLike<number>;
    let times: ArrayLike<number>;
    let duration: number;
    if (source.kind === 'audio') {
      await publisher?.progress(STAGE.fingerprinting, 'fingerprinting');
      const fp = await fingerprintAudio(source.samples, source.sample_rate, async (fraction) => {
        await publisher?.progress(Math.floor(STAGE.fingerprinting + fraction * (STAGE.storing - STAGE.fingerprinting)), 'fingerprinting');
      });
      hashes = fp.hashes;
      times = fp.times;
      duration = source.samples.length / source.sample_rate;
    } else {
      hashes = source.hashes;
      times = source.times;
      duration = source.duration_s;
    }
    await publisher?.progress(STAGE.storing, 'storing', `${hashes.length} landmarks`);
    const stored = await storeLandmarks(env, track.track_id, hashes, times, async (done, total) => {
      await publisher?.progress(Math.floor(STAGE.storing + ((STAGE.done - STAGE.storing - 1) * done) / total), 'storing');
    });
    if (!(await reg.finishTrack(track.track_id, stored, duration))) {
      // Deleted while we were storing: take our landmarks back out.
      await removeLandmarks(env, track.track_id);
      throw new RoomtoneError('gone', 'the track was deleted during ingestion');
    }
    const done = await reg.getTrack(track.track_id);
    if (!done) throw new RoomtoneError('gone', 'the track was deleted during ingestion');
    await publisher?.completed(resultUrl, { track_id: done.track_id, fingerprints: done.fingerprints, duration_s: done.duration_s });
    return done;
  } catch (e) {
    const message = e instanceof Error ? e.message : 'ingestion failed';
    await reg.failTrack(track.track_id, message).catch(() => {});
    await publisher?.error(message, !(e instanceof RoomtoneError), 'ingestion').catch(() => {});
    throw e;
  }
}

/** Fingerprints a decoded recording in slices, so progress can be reported between them. */
async function fingerprintAudio(samples: Float32Array, rate: number, onProgress: (fraction: number) => Promise<void>) {
  const kiss = await loadKissFFT();
  const fp = new StreamFingerprinter(kiss, FINGERPRINT_PRESETS.default, rate);
  const hashes: number[] = [];
  const times: number[] = [];
  try {
    const slices = 8;
    const per = Math.ceil(samples.length / slices);
    for (let s = 0; s < slices; s++) {
      const slice = samples.subarray(s * per, Math.min(samples.length, (s + 1) * per));
      for (let off = 0; off < slice.length; off += fp.maxChunk) {
        const b = fp.push(slice.subarray(off, Math.min(slice.length, off + fp.maxChunk)));
        for (let i = 0; i < b.count; i++) {
          hashes.push(b.hashes[i]);
          times.push(b.times[i]);
        }
      }
      await onProgress((s + 1) / slices);
    }
  } finally {
    fp.dispose();
  }
  return { hashes, times };
}
