// Running a job from inside the worker or another Durable Object.
//
// Server-side code (catalog ingestion, `POST /api/v1/analyze` for long files)
// creates a job, hands its links to the caller, and publishes progress as it
// works. Calls go straight to the job's Durable Object over native RPC; no
// HTTP, no admin token. Anyone holding `job_id` (or the links) can watch;
// only the publisher can post.
//
//   import { createJob } from '../lib/jobs.ts';
//
//   const job = await createJob(env, { kind: 'catalog.ingest', title: 'ingest 12 tracks', origin: new URL(request.url).origin });
//   // answer the client now: 202 { job_id, stream_url, status_url } (never the publish_token)
//   ctx.waitUntil((async () => {
//     try {
//       await job.publisher.progress(0, 'decoding');
//       …
//       await job.publisher.progress(60, 'fingerprinting', 'track 7 of 12');
//       await job.publisher.completed(`${origin}/api/v1/catalog/tracks`, { tracks: 12 });
//     } catch (e) {
//       await job.publisher.error(e instanceof Error ? e.message : 'ingestion failed', false, 'fingerprinting');
//     }
//   })());
//
// Work that continues in another request or object rebuilds a publisher from
// the id and token: `jobPublisher(env, job_id, publish_token)`.
//
// Rules the Job object enforces (every refusal throws a `RoomtoneError`):
// - progress is 0–100 and never goes backwards (`conflict`); equal is fine,
//   e.g. a new stage at the same percentage;
// - after `completed` or `error` nothing more is accepted (`invalid_state`);
// - stage ≤ 100 chars, message ≤ 1000, the whole event (summary included)
//   ≤ 16 KB (`too_large`); a bad value is `bad_request`.
// Publishing is ordered per publisher: await each call before the next.

import type { Env } from '../worker/env.ts';
import { Job } from '../durable/job.ts';
import { generateToken, hashToken } from './tokens.ts';
import {
  CreateJobBody,
  JOB_ID_PATTERN,
  JobEventInput,
  MAX_JOB_EVENT_BYTES,
  RoomtoneError,
  describeIssues,
  type CreatedJob,
  type JobLinks,
  type JobStatusWithEvents,
  type PublishedEvent,
} from '../protocol/index.ts';

export interface JobInit {
  /** What the job does, e.g. `catalog.ingest`, `analysis.file`: lowercase, digits, `_ . -`. */
  kind: string;
  title?: string;
  /** The public origin (`https://host`) the links point at. */
  origin: string;
  /** Heartbeat period of the job's streams, ms; default JOB_HEARTBEAT_MS or 30 s. */
  heartbeat_ms?: number;
  /** Kept this long after its end, s; default JOB_RETENTION_S or 7 days. */
  retention_s?: number;
}

export interface JobPublisher {
  readonly job_id: string;
  /** Overall progress 0–100 (never lower than the last), the current stage, an optional line for people. */
  progress(progress: number, stage: string, message?: string): Promise<PublishedEvent>;
  /** Terminal: the job succeeded. */
  completed(result_url?: string, summary?: unknown): Promise<PublishedEvent>;
  /** Terminal: the job failed; `retryable` tells the watcher whether running it again may help. */
  error(message: string, retryable: boolean, stage?: string): Promise<PublishedEvent>;
}

export interface StartedJob extends CreatedJob {
  publisher: JobPublisher;
}

export function generateJobId(): string {
  return `job_${generateToken(18)}`;
}

export function jobStub(env: Env, jobId: string) {
  return env.JOBS.get(env.JOBS.idFromName(jobId));
}

export function jobLinks(origin: string, jobId: string): JobLinks {
  const base = origin.replace(/\/+$/, '');
  return {
    stream_url: `${base.replace(/^http/, 'ws')}/api/v1/jobs/${jobId}/stream`,
    status_url: `${base}/api/v1/jobs/${jobId}`,
  };
}

/** Creates a job and returns its links, its publish token (secret: give it only to whoever publishes) and a publisher. */
export async function createJob(env: Env, init: JobInit): Promise<StartedJob> {
  const { origin, ...fields } = init;
  const parsed = CreateJobBody.safeParse(fields);
  if (!parsed.success) throw new RoomtoneError('bad_request', 'invalid job', { issues: describeIssues(parsed.error) });
  const body = parsed.data;
  const publish_token = generateToken();
  const token_hash = await hashToken(publish_token);
  for (let attempt = 0; attempt < 4; attempt++) {
    const job_id = generateJobId();
    const created = await jobStub(env, job_id).create({
      job_id,
      kind: body.kind,
      title: body.title ?? null,
      token_hash,
      heartbeat_ms: body.heartbeat_ms ?? Job.defaultHeartbeatMs(env),
      retention_s: body.retention_s ?? Job.defaultRetentionS(env),
    });
    if (created) return { job_id, publish_token, ...jobLinks(origin, job_id), publisher: jobPublisher(env, job_id, publish_token) };
  }
  // 144 random bits collided four times: something is wrong with the generator.
  throw new RoomtoneError('internal', 'could not allocate a job id');
}

/** Validates one event and posts it to the job; throws `RoomtoneError` when the job refuses it. */
export async function publishJobEvent(env: Env, jobId: string, publishToken: string, input: unknown): Promise<PublishedEvent> {
  const parsed = JobEventInput.safeParse(input);
  if (!parsed.success) throw new RoomtoneError('bad_request', 'invalid job event', { issues: describeIssues(parsed.error) });
  if (JSON.stringify(parsed.data).length > MAX_JOB_EVENT_BYTES) throw new RoomtoneError('too_large', `a job event is limited to ${MAX_JOB_EVENT_BYTES} bytes`);
  return postJobEvent(env, jobId, publishToken, parsed.data);
}

/** Posts an event that has already been validated (the REST route parsed it from the body). */
export async function postJobEvent(env: Env, jobId: string, publishToken: string, event: JobEventInput): Promise<PublishedEvent> {
  if (!JOB_ID_PATTERN.test(jobId)) throw new RoomtoneError('not_found', 'no such job');
  const result = await jobStub(env, jobId).publish(publishToken, event);
  if (!result.ok) throw new RoomtoneError(result.code, result.message);
  return result;
}

/** A publisher for a job created elsewhere (another request, another object). */
export function jobPublisher(env: Env, jobId: string, publishToken: string): JobPublisher {
  const post = (event: Record<string, unknown>) => publishJobEvent(env, jobId, publishToken, event);
  return {
    job_id: jobId,
    progress: (progress, stage, message) => post({ type: 'progress', progress, stage, ...(message === undefined ? {} : { message }) }),
    completed: (result_url, summary) =>
      post({ type: 'completed', ...(result_url === undefined ? {} : { result_url }), ...(summary === undefined ? {} : { summary }) }),
    error: (message, retryable, stage) => post({ type: 'error', message, retryable, ...(stage === undefined ? {} : { stage }) }),
  };
}

/** The job's status (and, with `after`, the events after that sequence), or null when there is no such job. */
export async function jobStatus(env: Env, jobId: string, after?: number): Promise<JobStatusWithEvents | null> {
  if (!JOB_ID_PATTERN.test(jobId)) return null;
  return jobStub(env, jobId).status(after);
}
