// The job wire protocol: REST bodies of /api/v1/jobs, the status document that
// polling clients read, and the messages of a job's WebSocket stream. Imported
// by the worker, the Job object, server-side publishers (src/lib/jobs.ts), the
// client watcher, the CLI and the tests.
//
// Every event that changes a job (progress, completed, error) gets the next
// sequence number of that job, 1, 2, 3…, and a server timestamp. A client that
// remembers the last sequence it saw can ask for exactly what it missed, over
// the socket (`?after=SEQ` or a `resume` message) or the status URL
// (`GET …?after=SEQ`). Heartbeats carry the job's latest sequence but do not
// take one, so a client also learns from a heartbeat that it is behind.

import { z } from 'zod';
import type { ErrorCode } from './errors.ts';

/** A whole REST event body (including a result summary) may not exceed this. */
export const MAX_JOB_EVENT_BYTES = 16 * 1024;
/** A client message on a job stream (pong, resume) is tiny. */
export const MAX_JOB_CLIENT_MESSAGE_BYTES = 1024;
/** Events one job may log; the terminal event is always accepted beyond it. */
export const MAX_JOB_EVENTS = 100_000;
/** Events returned by one status poll with `after`; `more: true` says there are others. */
export const MAX_JOB_EVENTS_PER_POLL = 1000;
export const HEARTBEAT_MS_MIN = 100;
export const HEARTBEAT_MS_MAX = 300_000;
export const RETENTION_S_MIN = 1;
export const RETENTION_S_MAX = 90 * 86_400;

/** Job ids are `job_` and 144 random bits: knowing one is the capability to watch. */
export const JOB_ID_PATTERN = /^job_[A-Za-z0-9_-]{24}$/;

export const STREAM_CLOSE = {
  /** The job finished: the last message was its terminal event. */
  finished: 1000,
  /** The client did not answer heartbeats. */
  heartbeatTimeout: 4008,
  /** The job was deleted (retention) while the socket was open. */
  expired: 4010,
  /** Too many bad messages. */
  misbehaving: 4003,
} as const;

const text = (max: number) => z.string().max(max);
const seq = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const JOB_KIND_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

export const CreateJobBody = z
  .object({
    kind: z.string().regex(JOB_KIND_PATTERN, 'lowercase letters, digits, and _ . - (up to 64)').default('generic'),
    title: text(200).optional(),
    /** Heartbeat period of this job's streams; the server default otherwise (JOB_HEARTBEAT_MS, 30 s). */
    heartbeat_ms: z.number().int().min(HEARTBEAT_MS_MIN).max(HEARTBEAT_MS_MAX).optional(),
    /** How long the job is kept after it ends (or after its last event); JOB_RETENTION_S, 7 days, otherwise. */
    retention_s: z.number().int().min(RETENTION_S_MIN).max(RETENTION_S_MAX).optional(),
  })
  .strict();
export type CreateJobBody = z.infer<typeof CreateJobBody>;

/** An optional publisher-chosen id: a retried POST with the same id is answered, not logged twice. */
const eventId = z.string().min(1).max(64).optional();

export const ProgressInput = z
  .object({
    type: z.literal('progress'),
    progress: z.number().min(0).max(100),
    stage: text(100).min(1),
    message: text(1000).optional(),
    id: eventId,
  })
  .strict();

export const CompletedInput = z
  .object({
    type: z.literal('completed'),
    result_url: z.string().url().max(2000).optional(),
    /** Anything JSON, within the event size limit. */
    summary: z.unknown().optional(),
    id: eventId,
  })
  .strict();

export const ErrorInput = z
  .object({
    type: z.literal('error'),
    message: text(1000).min(1),
    retryable: z.boolean(),
    stage: text(100).optional(),
    id: eventId,
  })
  .strict();

export const JobEventInput = z.discriminatedUnion('type', [ProgressInput, CompletedInput, ErrorInput]);
export type JobEventInput = z.infer<typeof JobEventInput>;
export const JOB_EVENT_TYPES = ['progress', 'completed', 'error'] as const;

// ---- server → client ----

interface Stamped {
  job_id: string;
  seq: number;
  /** Server time, ms since the epoch. */
  timestamp: number;
}

export interface ProgressEvent extends Stamped {
  type: 'progress';
  progress: number;
  stage: string;
  message: string | null;
}

export interface CompletedEvent extends Stamped {
  type: 'completed';
  result_url: string | null;
  summary: unknown;
}

export interface ErrorEvent extends Stamped {
  type: 'error';
  message: string;
  retryable: boolean;
  stage: string | null;
}

export type JobEvent = ProgressEvent | CompletedEvent | ErrorEvent;
export type TerminalEvent = CompletedEvent | ErrorEvent;

export interface HeartbeatMessage extends Stamped {
  type: 'heartbeat';
  /** Answer with {"type":"pong"} before the next heartbeat, or be dropped. */
  interval_ms: number;
}

/**
 * A refused client message. It has a `code` and no `seq`; a job's own
 * failure (`ErrorEvent`) has a `seq` and no `code`.
 */
export interface StreamErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  id: null;
}

export type JobStreamMessage = JobEvent | HeartbeatMessage | StreamErrorFrame;

export function isTerminal(e: JobEvent): e is TerminalEvent {
  return e.type === 'completed' || e.type === 'error';
}

/** Tells a job's failure from a refused client message. */
export function isJobEvent(m: JobStreamMessage): m is JobEvent {
  return m.type !== 'heartbeat' && 'seq' in m;
}

// Receivers parse, never cast: the client watcher checks every frame with these.
const stamped = { job_id: z.string(), seq: seq(), timestamp: z.number() };
export const JobEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('progress'), ...stamped, progress: z.number(), stage: z.string(), message: z.string().nullable() }),
  z.object({ type: z.literal('completed'), ...stamped, result_url: z.string().nullable(), summary: z.unknown() }),
  z.object({ type: z.literal('error'), ...stamped, message: z.string(), retryable: z.boolean(), stage: z.string().nullable() }),
]);
export const HeartbeatSchema = z.object({ type: z.literal('heartbeat'), ...stamped, interval_ms: z.number() });
export const StreamErrorSchema = z.object({ type: z.literal('error'), code: z.string(), message: z.string(), id: z.null() });
export const JobStreamMessageSchema = z.union([JobEventSchema, HeartbeatSchema, StreamErrorSchema]);

// ---- client → server, over the stream ----

export const JobClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pong'), seq: seq().optional() }).strict(),
  /** Sends every event after `after` (again, if the client already had some). */
  z.object({ type: z.literal('resume'), after: seq() }).strict(),
]);
export type JobClientMessage = z.infer<typeof JobClientMessage>;
export const JOB_CLIENT_TYPES = ['pong', 'resume'] as const;

// ---- status, for polling ----

export type JobState = 'pending' | 'running' | 'completed' | 'error';

export interface JobStatus {
  job_id: string;
  kind: string;
  title: string | null;
  state: JobState;
  /** 0–100; never goes backwards; 100 once completed. */
  progress: number;
  stage: string | null;
  message: string | null;
  /** Sequence of the latest event (0 before the first). */
  seq: number;
  created_ms: number;
  updated_ms: number;
  finished_ms: number | null;
  result_url: string | null;
  summary: unknown;
  error: { message: string; retryable: boolean; stage: string | null } | null;
  heartbeat_ms: number;
  retention_s: number;
  /** When the job will be deleted unless another event arrives (unfinished jobs). */
  expires_ms: number;
  watchers: number;
  server_ms: number;
}

export interface JobLinks {
  stream_url: string;
  status_url: string;
}

/** `GET /api/v1/jobs/:id?after=SEQ` adds the events the poller missed. */
export interface JobStatusWithEvents extends JobStatus {
  events?: JobEvent[];
  more?: boolean;
}

export const JobStatusSchema = z.object({
  job_id: z.string(),
  kind: z.string(),
  title: z.string().nullable(),
  state: z.enum(['pending', 'running', 'completed', 'error']),
  progress: z.number(),
  stage: z.string().nullable(),
  message: z.string().nullable(),
  seq: seq(),
  created_ms: z.number(),
  updated_ms: z.number(),
  finished_ms: z.number().nullable(),
  result_url: z.string().nullable(),
  summary: z.unknown(),
  error: z.object({ message: z.string(), retryable: z.boolean(), stage: z.string().nullable() }).nullable(),
  heartbeat_ms: z.number(),
  retention_s: z.number(),
  expires_ms: z.number(),
  watchers: z.number(),
  server_ms: z.number(),
  events: z.array(JobEventSchema).optional(),
  more: z.boolean().optional(),
});

export interface CreatedJob extends JobLinks {
  job_id: string;
  publish_token: string;
}

export interface PublishedEvent {
  ok: true;
  seq: number;
  timestamp: number;
  /** True when an event with the same `id` had already been logged (a retried POST). */
  duplicate: boolean;
}
