import { app } from './app.ts';

export { TransportSession } from '../durable/transport-session.ts';
export { ClientLimiter } from '../durable/client-limiter.ts';
export { RoomRelay } from '../durable/room-relay.ts';
export { ResultStore } from '../durable/result-store.ts';
export { Job } from '../durable/job.ts';
export { CatalogShard } from '../durable/catalog-shard.ts';
export { MatchStream } from '../durable/match-stream.ts';
export { LiveStreamRegistry } from '../durable/live-stream-registry.ts';
export { AnalysisStream } from '../durable/analysis-stream.ts';

export default app;
