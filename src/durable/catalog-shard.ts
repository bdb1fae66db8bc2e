import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import type { Track, TrackStatus } from '../protocol/index.ts';
import { MemoryIndex, type PackedRows } from '../../wasm/fingerprint/memory-index.ts';
import { numberVar } from '../lib/env-vars.ts';

/** Rows per range of hashes when the in-memory copy is read (see `cached`). */
const LOAD_ROWS = 100_000;

/**
 * One shard of the fingerprint catalog: the landmarks (hash → track, time)
 * whose hash falls in this shard's share of the hash space (see
 * src/lib/catalog.ts for the routing), in the object's own SQLite database.
 *
 * Shard 0 also keeps the track registry (id, title, artist, duration, landmark
 * count, status). One registry object is enough: it is touched once per
 * ingestion, deletion and reported match, never per landmark, while the
 * landmark tables, which every lookup reads, are spread over all shards.
 */
export class CatalogShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /**
   * The shard's landmarks held in memory for lookups, read from SQLite by
   * the first lookup. A live stream looks up ~1,600 hashes a second;
   * through SQLite's cursor each row cost more than the rest of the lookup,
   * a quarter of a stream's CPU. SQLite stays the store of record: edits go
   * to both (merged into the copy, not read back), and a shard larger than
   * CATALOG_CACHE_ROWS answers from SQLite alone, so memory stays bounded
   * whatever the catalog.
   */
  private cache: MemoryIndex | null = null;
  /** Set when the shard was found too large to hold in memory; cleared when a track is removed. */
  private uncached = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // The primary key clusters rows by hash, so a lookup is one index range
    // per hash; deleting a track scans the shard, which is rare.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS landmarks (
      hash INTEGER NOT NULL, track INTEGER NOT NULL, t INTEGER NOT NULL,
      PRIMARY KEY (hash, track, t)) WITHOUT ROWID`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS tracks (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      title TEXT NOT NULL, artist TEXT, duration_s REAL NOT NULL,
      fingerprints INTEGER NOT NULL DEFAULT 0,
      status TEXT NOT NULL, created_ms INTEGER NOT NULL,
      job_id TEXT, error TEXT)`);
  }

  // ---- landmarks (every shard) ----

  /** Stores landmarks of one track; returns how many rows are new. */
  async insert(track: number, hashes: Uint32Array | number[], times: Int32Array | number[]): Promise<number> {
    let stored: number;
    try {
      stored = this.insertStored(track, hashes, times);
    } catch (e) {
      // Some batches may be stored: the copy is read afresh rather than guessed at.
      this.dropCache();
      throw e;
    }
    // The copy takes the same rows; should it ever disagree with SQLite, or outgrow its bound, it goes.
    if (this.cache && (this.cache.insertUnique(track, hashes, times) !== stored || this.cache.size > this.cacheRows())) this.dropCache();
    return stored;
  }

  /** Returns the rows that were new: what each statement wrote (rows already there are ignored, not written). */
  private insertStored(track: number, hashes: Uint32Array | number[], times: Int32Array | number[]): number {
    // One statement per batch: json_each unpacks the rows inside SQLite, far
    // cheaper than a statement per row. Each row travels as one integer,
    // hash · 2^31 + time (below 2^53, so exact in JSON and in a double).
    const BATCH = 50_000;
    let written = 0;
    for (let i = 0; i < hashes.length; i += BATCH) {
      const end = Math.min(hashes.length, i + BATCH);
      const packed = new Array<number>(end - i);
      for (let j = i; j < end; j++) packed[j - i] = hashes[j] * 2147483648 + times[j];
      written += this.sql.exec(
        'INSERT OR IGNORE INTO landmarks (hash, track, t) SELECT value >> 31, ?1, value & 2147483647 FROM json_each(?2)',
        track,
        JSON.stringify(packed),
      ).rowsWritten;
    }
    return written;
  }

  /**
   * Every row of the given hashes, as parallel typed arrays (which an RPC
   * reply copies whole; number arrays are cloned element by element),
   * leaving out hashes with more than `maxRows` rows.
   */
  async lookup(hashes: Uint32Array | number[], maxRows = Number.MAX_SAFE_INTEGER): Promise<PackedRows> {
    if (hashes.length === 0) return { hashes: new Uint32Array(0), tracks: new Int32Array(0), times: new Int32Array(0) };
    const cache = this.cached();
    if (cache) return cache.lookup(hashes, maxRows);
    return this.lookupStored(hashes, maxRows);
  }

  /**
   * `lookup` through SQLite alone: what a shard too large for memory does,
   * and what the copy must agree with. Rows are read as plain arrays (a row
   * object and three pushes per row cost more) into arrays of the exact size.
   */
  lookupStored(hashes: Uint32Array | number[], maxRows: number): PackedRows {
    // Rows come out grouped by hash (the primary key's order): a run longer than the cap is left out.
    const rows = Array.from(
      this.sql.exec('SELECT hash, track, t FROM landmarks WHERE hash IN (SELECT value FROM json_each(?)) ORDER BY hash', JSON.stringify(Array.from(hashes))).raw<[number, number, number]>(),
    );
    // The runs of rows to keep, then arrays of exactly their size.
    const runs: number[] = [];
    let kept = 0;
    for (let r = 0; r < rows.length; ) {
      let end = r + 1;
      while (end < rows.length && rows[end][0] === rows[r][0]) end++;
      if (end - r <= maxRows) {
        runs.push(r, end);
        kept += end - r;
      }
      r = end;
    }
    const out = { hashes: new Uint32Array(kept), tracks: new Int32Array(kept), times: new Int32Array(kept) };
    let n = 0;
    for (let i = 0; i < runs.length; i += 2) {
      for (let r = runs[i]; r < runs[i + 1]; r++, n++) {
        const row = rows[r];
        out.hashes[n] = row[0];
        out.tracks[n] = row[1];
        out.times[n] = row[2];
      }
    }
    return out;
  }

  /** The in-memory copy of the landmarks, read now if need be; null when the shard is too large to hold. */
  private cached(): MemoryIndex | null {
    if (this.cache || this.uncached) return this.cache;
    const { n, lo, hi } = this.sql.exec<{ n: number; lo: number | null; hi: number | null }>('SELECT count(*) AS n, min(hash) AS lo, max(hash) AS hi FROM landmarks').one();
    if (n > this.cacheRows()) {
      this.uncached = true;
      return null;
    }
    const rows = { hashes: new Uint32Array(n), tracks: new Int32Array(n), times: new Int32Array(n) };
    // Three JSON arrays per range of hashes: built inside SQLite and parsed
    // natively, a third of the CPU of a cursor's row arrays. Ranges keep the
    // strings small whatever the shard holds.
    if (lo !== null && hi !== null) {
      const step = Math.ceil((hi - lo + 1) / Math.max(1, Math.ceil(n / LOAD_ROWS)));
      for (let a = lo, r = 0; a <= hi; a += step) {
        const part = this.sql
          .exec<{ h: string; tr: string; tt: string }>(
            'SELECT json_group_array(hash) AS h, json_group_array(track) AS tr, json_group_array(t) AS tt FROM (SELECT hash, track, t FROM landmarks WHERE hash >= ?1 AND hash < ?2 ORDER BY hash)',
            a,
            a + step,
          )
          .one();
        const times = JSON.parse(part.tt) as number[];
        rows.hashes.set(JSON.parse(part.h) as number[], r);
        rows.tracks.set(JSON.parse(part.tr) as number[], r);
        rows.times.set(times, r);
        r += times.length;
      }
    }
    // Binary search, not a 16 MB table per shard: an isolate may host several shards.
    this.cache = MemoryIndex.fromSortedRows(rows, { directTable: false });
    return this.cache;
  }

  private cacheRows(): number {
    return numberVar(this.env.CATALOG_CACHE_ROWS, 1_000_000);
  }

  private dropCache(): void {
    this.cache = null;
    this.uncached = false;
  }

  /** Removes a track's landmarks; returns how many were removed. */
  async removeTrack(track: number): Promise<number> {
    this.cache?.remove(track);
    // A shard too large for memory may fit once the track is gone.
    this.uncached = false;
    return this.sql.exec('DELETE FROM landmarks WHERE track = ?', track).rowsWritten;
  }

  landmarkCount(): number {
    return this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM landmarks').one().n;
  }

  // ---- track registry (shard 0) ----

  async registerTrack(meta: { title: string; artist: string | null; duration_s: number; job_id: string | null }): Promise<Track> {
    const row = this.sql
      .exec<TrackRow>(
        `INSERT INTO tracks (title, artist, duration_s, status, created_ms, job_id) VALUES (?, ?, ?, 'ingesting', ?, ?) RETURNING *`,
        meta.title,
        meta.artist,
        meta.duration_s,
        Date.now(),
        meta.job_id,
      )
      .one();
    return toTrack(row);
  }

  async setJob(id: number, jobId: string): Promise<void> {
    this.sql.exec('UPDATE tracks SET job_id = ? WHERE id = ?', jobId, id);
  }

  /** Marks ingestion finished; false if the track was deleted meanwhile. */
  async finishTrack(id: number, fingerprints: number, duration_s: number): Promise<boolean> {
    return this.sql.exec(`UPDATE tracks SET status = 'ready', fingerprints = ?, duration_s = ? WHERE id = ?`, fingerprints, duration_s, id).rowsWritten > 0;
  }

  async failTrack(id: number, error: string): Promise<void> {
    this.sql.exec(`UPDATE tracks SET status = 'failed', error = ? WHERE id = ?`, error.slice(0, 500), id);
  }

  async getTrack(id: number): Promise<Track | null> {
    const rows = this.sql.exec<TrackRow>('SELECT * FROM tracks WHERE id = ?', id).toArray();
    return rows.length ? toTrack(rows[0]) : null;
  }

  /** The tracks among `ids` that are ready to be reported. */
  async readyTracks(ids: number[]): Promise<Track[]> {
    if (ids.length === 0) return [];
    return this.sql
      .exec<TrackRow>(`SELECT * FROM tracks WHERE status = 'ready' AND id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids))
      .toArray()
      .map(toTrack);
  }

  async listTracks(after: number, limit: number): Promise<Track[]> {
    return this.sql.exec<TrackRow>('SELECT * FROM tracks WHERE id > ? ORDER BY id LIMIT ?', after, limit).toArray().map(toTrack);
  }

  /** Forgets a track; returns it as it was, or null if there was none. */
  async unregisterTrack(id: number): Promise<Track | null> {
    const rows = this.sql.exec<TrackRow>('DELETE FROM tracks WHERE id = ? RETURNING *', id).toArray();
    return rows.length ? toTrack(rows[0]) : null;
  }
}

type TrackRow = {
  id: number;
  title: string;
  artist: string | null;
  duration_s: number;
  fingerprints: number;
  status: string;
  created_ms: number;
  job_id: string | null;
  error: string | null;
};

function toTrack(r: TrackRow): Track {
  const t: Track = {
    track_id: r.id,
    title: r.title,
    artist: r.artist,
    duration_s: r.duration_s,
    fingerprints: r.fingerprints,
    status: r.status as TrackStatus,
    created_ms: r.created_ms,
    job_id: r.job_id,
  };
  if (r.error) t.error = r.error;
  return t;
}
