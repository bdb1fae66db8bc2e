import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import type { Track, TrackStatus } from '../protocol/index.ts';

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
    const before = this.landmarkCount();
    // One statement per batch: json_each unpacks the rows inside SQLite, far
    // cheaper than a statement per row. Each row travels as one integer,
    // hash · 2^31 + time (below 2^53, so exact in JSON and in a double).
    const BATCH = 50_000;
    for (let i = 0; i < hashes.length; i += BATCH) {
      const end = Math.min(hashes.length, i + BATCH);
      const packed = new Array<number>(end - i);
      for (let j = i; j < end; j++) packed[j - i] = hashes[j] * 2147483648 + times[j];
      this.sql.exec(
        'INSERT OR IGNORE INTO landmarks (hash, track, t) SELECT value >> 31, ?1, value & 2147483647 FROM json_each(?2)',
        track,
        JSON.stringify(packed),
      );
    }
    return this.landmarkCount() - before;
  }

  /**
   * Every row of the given hashes, as parallel arrays, leaving out hashes
   * with more than `maxRows` rows. Rows are read as plain arrays into typed
   * arrays of the exact size, which an RPC reply copies whole: a row object
   * and three pushes per row, then three number arrays cloned element by
   * element, were a third of a live stream's CPU in the runtime (the
   * cursor's own per-row cost, about a quarter, remains).
   */
  async lookup(hashes: Uint32Array | number[], maxRows = Number.MAX_SAFE_INTEGER): Promise<{ hashes: Uint32Array; tracks: Int32Array; times: Int32Array }> {
    if (hashes.length === 0) return { hashes: new Uint32Array(0), tracks: new Int32Array(0), times: new Int32Array(0) };
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

  /** Removes a track's landmarks; returns how many were removed. */
  async removeTrack(track: number): Promise<number> {
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
