import type { TransportSession } from '../durable/transport-session.ts';
import type { ClientLimiter } from '../durable/client-limiter.ts';
import type { RoomRelay } from '../durable/room-relay.ts';
import type { ResultStore } from '../durable/result-store.ts';
import type { Job } from '../durable/job.ts';
import type { CatalogShard } from '../durable/catalog-shard.ts';
import type { MatchStream } from '../durable/match-stream.ts';
import type { LiveStreamRegistry } from '../durable/live-stream-registry.ts';
import type { AnalysisStream } from '../durable/analysis-stream.ts';

export interface Env {
  TRANSPORT: DurableObjectNamespace<TransportSession>;
  LIMITER: DurableObjectNamespace<ClientLimiter>;
  RELAYS: DurableObjectNamespace<RoomRelay>;
  /** Finished offline-analysis documents, one object per job. */
  RESULTS: DurableObjectNamespace<ResultStore>;
  /** Viewers one room object holds before it spreads new ones over relays. */
  ROOM_VIEWER_CAPACITY?: string;
  /** Viewers per relay object. */
  RELAY_CAPACITY?: string;
  /** Seconds without any message from the agent after which the room takes it as gone (a dead link closes nothing). */
  AGENT_SILENT_S?: string;
  JOBS: DurableObjectNamespace<Job>;
  CATALOG: DurableObjectNamespace<CatalogShard>;
  MATCH: DurableObjectNamespace<MatchStream>;
  LIVE_STREAMS: DurableObjectNamespace<LiveStreamRegistry>;
  ANALYSIS: DurableObjectNamespace<AnalysisStream>;
  ASSETS?: Fetcher;
  /** Secret: catalog writes, monitoring, force-disconnect. `.dev.vars` locally. */
  ADMIN_TOKEN?: string;
  ROOM_IDLE_TTL_S?: string;
  JOIN_FAILURES_PER_MIN?: string;
  ROOMS_PER_MIN?: string;
  /** Job streams: default heartbeat period (ms), retention of finished jobs (s), per-client limits per minute. */
  JOB_HEARTBEAT_MS?: string;
  JOB_RETENTION_S?: string;
  JOBS_PER_MIN?: string;
  JOB_STREAMS_PER_MIN?: string;
  /** WebSockets one client may hold open at once, every kind together. */
  CONNECTIONS_PER_CLIENT?: string;
  /** Number of fingerprint catalog shards (CatalogShard objects). */
  CATALOG_SHARDS?: string;
  /** Landmark rows a catalog shard holds in memory for lookups; a larger shard reads SQLite for each. */
  CATALOG_CACHE_ROWS?: string;
  /** Seconds of audio a match stream may send ahead of real time. */
  MATCH_BURST_S?: string;
}

export type AppEnv = { Bindings: Env };
