import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import type { LiveStreamSummary, MatchData, MatchFormat } from '../protocol/index.ts';

/**
 * The list of live identification streams, for monitoring. One object for
 * the deployment: each MatchStream tells it when a stream connects, declares
 * its format, matches a track, and closes. Per-stream detail stays in the
 * MatchStream object itself.
 */
export class LiveStreamRegistry extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS streams (
      client_id TEXT PRIMARY KEY, connected_ms INTEGER NOT NULL,
      sample_rate INTEGER, format TEXT, audio_s REAL NOT NULL DEFAULT 0,
      match TEXT, updated_ms INTEGER NOT NULL)`);
  }

  async upsert(s: LiveStreamSummary): Promise<void> {
    this.sql.exec(
      `INSERT INTO streams (client_id, connected_ms, sample_rate, format, audio_s, match, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET connected_ms = excluded.connected_ms, sample_rate = excluded.sample_rate,
         format = excluded.format, audio_s = excluded.audio_s, match = excluded.match, updated_ms = excluded.updated_ms`,
      s.client_id,
      s.connected_ms,
      s.sample_rate,
      s.format,
      s.audio_s,
      s.match ? JSON.stringify(s.match) : null,
      s.updated_ms,
    );
  }

  /** Removes a stream, unless a newer connection of the same client has registered since. */
  async remove(clientId: string, connectedMs: number): Promise<void> {
    this.sql.exec('DELETE FROM streams WHERE client_id = ? AND connected_ms <= ?', clientId, connectedMs);
  }

  async list(): Promise<LiveStreamSummary[]> {
    return this.sql.exec<Row>('SELECT * FROM streams ORDER BY connected_ms').toArray().map(toSummary);
  }
}

type Row = { client_id: string; connected_ms: number; sample_rate: number | null; format: string | null; audio_s: number; match: string | null; updated_ms: number };

function toSummary(r: Row): LiveStreamSummary {
  return {
    client_id: r.client_id,
    connected_ms: r.connected_ms,
    sample_rate: r.sample_rate,
    format: r.format as MatchFormat | null,
    audio_s: r.audio_s,
    // Written by this object from a MatchData a moment ago.
    match: r.match ? (JSON.parse(r.match) as MatchData) : null,
    updated_ms: r.updated_ms,
  };
}
