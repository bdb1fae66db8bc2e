import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import { numberVar } from '../lib/env-vars.ts';
import {
  type ErrorCode,
  type JobEvent,
  type JobEventInput,
  type JobStatus,
  type JobStatusWithEvents,
  type JobStreamMessage,
  type PublishedEvent,
  type TerminalEvent,
  HEARTBEAT_MS_MAX,
  HEARTBEAT_MS_MIN,
  JOB_CLIENT_TYPES,
  JobClientMessage,
  MAX_JOB_CLIENT_MESSAGE_BYTES,
  MAX_JOB_EVENTS,
  MAX_JOB_EVENTS_PER_POLL,
  STREAM_CLOSE,
  describeIssues,
} from '../protocol/index.ts';
import { constantTimeEqual, tokenMatches } from '../lib/tokens.ts';
import { TokenBucket } from '../lib/rate.ts';
import { holdsLeases, leaseTags, releaseLease } from './connection-lease.ts';

/** The job's own record; events live in their own table beside it. */
interface JobRecord {
  job_id: string;
  kind: string;
  title: string | null;
  token_hash: string;
  created_ms: number;
  updated_ms: number;
  heartbeat_ms: number;
  retention_s: number;
  seq: number;
  progress: number;
  stage: string | null;
  message: string | null;
  terminal: TerminalEvent | null;
}

/** Per-socket state that survives hibernation. */
interface WatcherAttachment {
  connected_ms: number;
  /** When the last heartbeat went out to this socket (null before the first). */
  heartbeat_ms: number | null;
  /** When this socket last answered with a pong. */
  pong_ms: number;
}

export interface CreateJobInput {
  job_id: string;
  kind: string;
  title: string | null;
  token_hash: string;
  heartbeat_ms: number;
  retention_s: number;
}

export type PublishResult = PublishedEvent | { ok: false; code: ErrorCode; message: string };

const SOCKET_RATE = { perSecond: 20, burst: 40 };
/** Far more than one job needs; a cap so one id cannot hold unbounded sockets. */
export const MAX_WATCHERS_PER_JOB = 20_000;

function errorResponse(status: number, code: ErrorCode, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

/**
 * One job: its record, its append-only event log (SQLite), its watchers'
 * hibernatable sockets, and one alarm that does both the heartbeats and the
 * deletion after retention.
 *
 * Nothing runs between events unless someone watches: heartbeats are alarms,
 * not intervals, so the object sleeps (hibernates) between them and thousands
 * of quiet watchers cost one wake-up per heartbeat period. Every event is
 * written before it is sent (the output gate holds the frames until the write
 * is durable), so an eviction or a crash cannot lose one a watcher has seen,
 * and a watcher can always get the rest by sequence.
 */
export class Job extends DurableObject<Env> {
  private job: JobRecord | null = null;
  private buckets = new WeakMap<WebSocket, TokenBucket>();
  /** When the alarm is set for (null: none; undefined: not read since the object started). */
  private alarmAt: number | null | undefined = undefined;
  /** The publish token once it has been seen to match the stored hash (memory only). */
  private publisherToken: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.ensureSchema();
    const row = ctx.storage.sql.exec<{ record: string }>('SELECT record FROM job WHERE id = 1').toArray()[0];
    this.job = row ? (JSON.parse(row.record) as JobRecord) : null;
  }

  // ---- RPC from the worker and from src/lib/jobs.ts ----

  async create(input: CreateJobInput): Promise<boolean> {
    if (this.job) return false;
    this.ensureSchema();
    const now = Date.now();
    this.job = {
      job_id: input.job_id,
      kind: input.kind,
      title: input.title,
      token_hash: input.token_hash,
      created_ms: now,
      updated_ms: now,
      heartbeat_ms: Math.min(HEARTBEAT_MS_MAX, Math.max(HEARTBEAT_MS_MIN, input.heartbeat_ms)),
      retention_s: input.retention_s,
      seq: 0,
      progress: 0,
      stage: null,
      message: null,
      terminal: null,
    };
    this.saveRecord();
    await this.setAlarm(this.deleteAt(this.job));
    return true;
  }

  async status(after?: number): Promise<JobStatusWithEvents | null> {
    if (!this.job) return null;
    const status: JobStatusWithEvents = this.snapshot(this.job);
    if (after !== undefined) {
      const rows = this.ctx.storage.sql
        .exec<{ body: string }>('SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?', after, MAX_JOB_EVENTS_PER_POLL + 1)
        .toArray();
      status.more = rows.length > MAX_JOB_EVENTS_PER_POLL;
      status.events = rows.slice(0, MAX_JOB_EVENTS_PER_POLL).map((r) => JSON.parse(r.body) as JobEvent);
    }
    return status;
  }

  async publish(token: string, input: JobEventInput): Promise<PublishResult> {
    const job = this.job;
    if (!job) return { ok: false, code: 'not_found', message: 'no such job (it may have expired)' };
    if (!(await this.isPublisher(token, job))) return { ok: false, code: 'unauthorized', message: 'a valid publish token for this job is required' };
    if (input.id !== undefined) {
      const prior = this.ctx.storage.sql.exec<{ seq: number; ts: number }>('SELECT seq, ts FROM events WHERE event_id = ?', input.id).toArray()[0];
      if (prior) return { ok: true, seq: prior.seq, timestamp: prior.ts, duplicate: true };
    }
    if (job.terminal) {
      return { ok: false, code: 'invalid_state', message: `the job has already ${job.terminal.type === 'completed' ? 'completed' : 'failed'} (event ${job.terminal.seq}); it accepts no more events` };
    }
    if (input.type === 'progress') {
      if (input.progress < job.progress) {
        return { ok: false, code: 'conflict', message: `progress never goes backwards: the job is already at ${job.progress}` };
      }
      if (job.seq >= MAX_JOB_EVENTS) {
        return { ok: false, code: 'too_large', message: `a job logs at most ${MAX_JOB_EVENTS} events; only completed or error is accepted now` };
      }
    }
    return await this.append(job, input);
  }

  /** Hashes the token once per instance: the publisher posts many events, each on the latency path. */
  private async isPublisher(token: string, job: JobRecord): Promise<boolean> {
    if (this.publisherToken !== null) return constantTimeEqual(token, this.publisherToken);
    if (!(await tokenMatches(token, job.token_hash))) return false;
    this.publisherToken = token;
    return true;
  }

  // ---- runtime entry points: thin, then a named hook ----

  async fetch(request: Request): Promise<Response> {
    if (!this.job) return errorResponse(404, 'not_found', 'no such job (it may have expired)');
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return errorResponse(426, 'bad_request', 'expected a WebSocket upgrade');
    }
    const raw = new URL(request.url).searchParams.get('after');
    let after = 0;
    if (raw !== null) {
      after = Number(raw);
      if (raw.trim() === '' || !Number.isSafeInteger(after) || after < 0) {
        return errorResponse(400, 'bad_request', 'after must be the last sequence number seen (an integer ≥ 0)');
      }
    }
    if (this.ctx.getWebSockets().length >= MAX_WATCHERS_PER_JOB) {
      return errorResponse(429, 'rate_limited', `this job already has ${MAX_WATCHERS_PER_JOB} watchers`);
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, leaseTags(request));
    server.serializeAttachment({ connected_ms: Date.now(), heartbeat_ms: null, pong_ms: 0 } satisfies WatcherAttachment);
    await this.onConnect(server, after);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.onMessage(ws, message, Date.now());
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    this.buckets.delete(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    this.buckets.delete(ws);
  }

  async holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]> {
    return holdsLeases(this.ctx, limiterId, leases);
  }

  async alarm(): Promise<void> {
    this.alarmAt = null; // this one has fired
    await this.onAlarm(Date.now());
  }

  // ---- hooks ----

  private async onConnect(ws: WebSocket, after: number): Promise<void> {
    const job = this.job!;
    if (after > job.seq && !job.terminal) {
      // The client claims events this job never had: say so, then carry on live.
      this.send(ws, { type: 'error', code: 'bad_request', message: `after is beyond the job's last event (${job.seq})`, id: null });
    }
    if (job.terminal && after >= job.terminal.seq) {
      // Every connection to an ended job ends with its terminal event, even
      // one that had seen it: the final state, at once.
      this.send(ws, job.terminal);
    } else {
      this.replay(ws, after);
    }
    if (job.terminal) {
      const terminal = job.terminal;
      // Closed once the upgrade response is on its way: a socket closed before
      // its 101 leaves the client with a 1006 instead of a clean close.
      setTimeout(() => this.closeFinished(ws, terminal), 0);
      return;
    }
    // A first heartbeat at once, after the replay: it tells the client the
    // period and the head of the log, and proves the stream works even when
    // the job has nothing new to say.
    const now = Date.now();
    const att = this.attachment(ws);
    if (att) this.sendHeartbeat(ws, att, this.heartbeatText(job, now), now);
    await this.ensureHeartbeatAlarm(now);
  }

  private async onMessage(ws: WebSocket, message: string | ArrayBuffer, received: number): Promise<void> {
    let bucket = this.buckets.get(ws);
    if (!bucket) this.buckets.set(ws, (bucket = new TokenBucket(SOCKET_RATE.perSecond, SOCKET_RATE.burst, received)));
    if (!bucket.take(received)) return this.refuse(ws, 'rate_limited', `more than ${SOCKET_RATE.perSecond} messages per second; message dropped`);
    if (typeof message !== 'string') return this.refuse(ws, 'bad_request', 'binary frames are not accepted on a job stream');
    if (message.length > MAX_JOB_CLIENT_MESSAGE_BYTES) return this.refuse(ws, 'too_large', `messages are limited to ${MAX_JOB_CLIENT_MESSAGE_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      return this.refuse(ws, 'bad_json', 'message is not valid JSON');
    }
    const parsed = JobClientMessage.safeParse(raw);
    if (!parsed.success) {
      const type = (raw as { type?: unknown } | null)?.type;
      if (typeof type !== 'string' || !(JOB_CLIENT_TYPES as readonly string[]).includes(type)) {
        return this.refuse(ws, 'unknown_type', `unknown message type; expected one of ${JOB_CLIENT_TYPES.join(', ')}`);
      }
      return this.refuse(ws, 'bad_request', `invalid ${type}: ${describeIssues(parsed.error).join('; ')}`);
    }
    const msg = parsed.data;
    const att = this.attachment(ws);
    switch (msg.type) {
      case 'pong':
        if (att) {
          att.pong_ms = received;
          ws.serializeAttachment(att);
        }
        return;
      case 'resume': {
        const job = this.job;
        if (!job) return;
        if (msg.after > job.seq) {
          return this.refuse(ws, 'bad_request', `after is beyond the job's last event (${job.seq})`);
        }
        // Any message proves the client is alive.
        if (att) {
          att.pong_ms = received;
          ws.serializeAttachment(att);
        }
        this.replay(ws, msg.after);
        return;
      }
    }
  }

  private async onAlarm(now: number): Promise<void> {
    const job = this.job;
    if (!job) return;
    if (now >= this.deleteAt(job)) {
      await this.expire();
      return;
    }
    if (!job.terminal) this.heartbeat(job, now);
    await this.scheduleAlarm(now);
  }

  // ---- events ----

  private async append(job: JobRecord, input: JobEventInput): Promise<PublishedEvent> {
    const seq = job.seq + 1;
    const timestamp = Math.max(Date.now(), job.updated_ms);
    const stamp = { job_id: job.job_id, seq, timestamp };
    let event: JobEvent;
    switch (input.type) {
      case 'progress':
        event = { type: 'progress', ...stamp, progress: input.progress, stage: input.stage, message: input.message ?? null };
        job.progress = input.progress;
        job.stage = input.stage;
        job.message = input.message ?? null;
        break;
      case 'completed':
        event = { type: 'completed', ...stamp, result_url: input.result_url ?? null, summary: input.summary ?? null };
        job.progress = 100;
        job.message = null;
        job.terminal = event;
        break;
      case 'error':
        event = { type: 'error', ...stamp, message: input.message, retryable: input.retryable, stage: input.stage ?? job.stage };
        job.message = input.message;
        if (input.stage) job.stage = input.stage;
        job.terminal = event;
        break;
    }
    job.seq = seq;
    job.updated_ms = timestamp;
    const text = JSON.stringify(event satisfies JobStreamMessage);
    // One transaction: the log and the record never disagree about the last sequence.
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec('INSERT INTO events (seq, type, body, ts, event_id) VALUES (?, ?, ?, ?, ?)', seq, event.type, text, timestamp, input.id ?? null);
      this.saveRecord();
    });
    for (const ws of this.ctx.getWebSockets()) this.sendText(ws, text);
    if (job.terminal) {
      for (const ws of this.ctx.getWebSockets()) this.closeFinished(ws, job.terminal);
      // Heartbeats stop; the next alarm is the deletion after retention.
      await this.setAlarm(this.deleteAt(job));
    }
    return { ok: true, seq, timestamp, duplicate: false };
  }

  /** Sends every logged event after `after`, in order. */
  private replay(ws: WebSocket, after: number): void {
    const cursor = this.ctx.storage.sql.exec<{ body: string }>('SELECT body FROM events WHERE seq > ? ORDER BY seq', after);
    for (const row of cursor) this.sendText(ws, row.body);
  }

  // ---- heartbeats: an alarm per period, only while someone watches ----

  private heartbeat(job: JobRecord, now: number): void {
    const text = this.heartbeatText(job, now);
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att) continue;
      // A socket that got a heartbeat less than half a period ago (on connect)
      // is left alone this time: it has not had its fair time to answer.
      if (att.heartbeat_ms !== null && now - att.heartbeat_ms < job.heartbeat_ms / 2) continue;
      if (att.heartbeat_ms !== null && att.pong_ms < att.heartbeat_ms) {
        try {
          ws.close(STREAM_CLOSE.heartbeatTimeout, 'no pong to the last heartbeat');
        } catch {
          // already closing
        }
        continue;
      }
      this.sendHeartbeat(ws, att, text, now);
    }
  }

  private heartbeatText(job: JobRecord, now: number): string {
    return JSON.stringify({ type: 'heartbeat', job_id: job.job_id, seq: job.seq, timestamp: now, interval_ms: job.heartbeat_ms } satisfies JobStreamMessage);
  }

  private sendHeartbeat(ws: WebSocket, att: WatcherAttachment, text: string, now: number): void {
    att.heartbeat_ms = now;
    ws.serializeAttachment(att);
    this.sendText(ws, text);
  }

  private async ensureHeartbeatAlarm(now: number): Promise<void> {
    const job = this.job!;
    const due = now + job.heartbeat_ms;
    // Known in memory after the first look: connects do not each read storage.
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || this.alarmAt > due) await this.setAlarm(due);
  }

  private async scheduleAlarm(now: number): Promise<void> {
    const job = this.job!;
    let next = this.deleteAt(job);
    if (!job.terminal && this.ctx.getWebSockets().length > 0) next = Math.min(next, now + job.heartbeat_ms);
    await this.setAlarm(next);
  }

  private async setAlarm(at: number): Promise<void> {
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  // ---- retention ----

  /** Finished jobs are kept for the retention after their end; abandoned ones after their last event. */
  private deleteAt(job: JobRecord): number {
    return (job.terminal?.timestamp ?? job.updated_ms) + job.retention_s * 1000;
  }

  private async expire(): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.close(STREAM_CLOSE.expired, 'the job was deleted after its retention');
      } catch {
        // already closed
      }
    }
    this.job = null;
    await this.ctx.storage.deleteAlarm();
    this.alarmAt = null;
    await this.ctx.storage.deleteAll();
  }

  // ---- plumbing ----

  private ensureSchema(): void {
    const sql = this.ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS job (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)');
    sql.exec('CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL, ts INTEGER NOT NULL, event_id TEXT UNIQUE)');
  }

  private saveRecord(): void {
    this.ctx.storage.sql.exec('INSERT OR REPLACE INTO job (id, record) VALUES (1, ?)', JSON.stringify(this.job));
  }

  private snapshot(job: JobRecord): JobStatus {
    const t = job.terminal;
    return {
      job_id: job.job_id,
      kind: job.kind,
      title: job.title,
      state: t ? t.type : job.seq === 0 ? 'pending' : 'running',
      progress: job.progress,
      stage: job.stage,
      message: job.message,
      seq: job.seq,
      created_ms: job.created_ms,
      updated_ms: job.updated_ms,
      finished_ms: t ? t.timestamp : null,
      result_url: t?.type === 'completed' ? t.result_url : null,
      summary: t?.type === 'completed' ? t.summary : null,
      error: t?.type === 'error' ? { message: t.message, retryable: t.retryable, stage: t.stage } : null,
      heartbeat_ms: job.heartbeat_ms,
      retention_s: job.retention_s,
      expires_ms: this.deleteAt(job),
      watchers: this.ctx.getWebSockets().length,
      server_ms: Date.now(),
    };
  }

  private attachment(ws: WebSocket): WatcherAttachment | null {
    return (ws.deserializeAttachment() as WatcherAttachment | null) ?? null;
  }

  private closeFinished(ws: WebSocket, terminal: TerminalEvent): void {
    try {
      ws.close(STREAM_CLOSE.finished, terminal.type === 'completed' ? 'job completed' : 'job failed');
    } catch {
      // already closed
    }
  }

  private send(ws: WebSocket, msg: JobStreamMessage): void {
    this.sendText(ws, JSON.stringify(msg));
  }

  private refuse(ws: WebSocket, code: ErrorCode, message: string): void {
    this.send(ws, { type: 'error', code, message, id: null });
  }

  private sendText(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
    } catch {
      // the socket is closing; its close handler cleans up
    }
  }

  static defaultHeartbeatMs(env: Env): number {
    return Math.min(HEARTBEAT_MS_MAX, Math.max(HEARTBEAT_MS_MIN, numberVar(env.JOB_HEARTBEAT_MS, 30_000)));
  }

  static defaultRetentionS(env: Env): number {
    return numberVar(env.JOB_RETENTION_S, 7 * 86_400);
  }
}
