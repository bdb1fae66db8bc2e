import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject, createExecutionContext } from 'cloudflare:test';
import { api, sleep } from './helpers.ts';
import type { Env } from '../../src/worker/env.ts';
import { app } from '../../src/worker/app.ts';
import { createJob, jobPublisher, jobStatus, jobStub, publishJobEvent } from '../../src/lib/jobs.ts';
import type { Job } from '../../src/durable/job.ts';
import {
  JOB_ID_PATTERN,
  JobStreamMessageSchema,
  MAX_JOB_EVENTS_PER_POLL,
  RoomtoneError,
  type CreatedJob,
  type JobEvent,
  type JobStatusWithEvents,
  type JobStreamMessage,
} from '../../src/protocol/index.ts';

const E = env as Env;
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

async function createViaApi(body: Record<string, unknown> = {}, ip?: string): Promise<CreatedJob> {
  const res = await api('/api/v1/jobs', { method: 'POST', headers: ADMIN, body: JSON.stringify({ kind: 'test', ...body }), ip });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.json();
}

function post(jobId: string, token: string | null, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return api(`/api/v1/jobs/${jobId}/events`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function status(jobId: string, query = ''): Promise<JobStatusWithEvents> {
  const res = await api(`/api/v1/jobs/${jobId}${query}`);
  expect(res.status).toBe(200);
  return res.json();
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string; issues?: string[] }> {
  const body = await res.json<{ error: { code: string; message: string; issues?: string[] } }>();
  return { status: res.status, ...body.error };
}

/** A watcher socket that keeps everything it receives, parsed with the protocol's schema. */
class Watcher {
  readonly ws: WebSocket;
  readonly messages: JobStreamMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: Array<() => void> = [];
  answerHeartbeats: boolean;

  constructor(ws: WebSocket, answerHeartbeats: boolean) {
    this.ws = ws;
    this.answerHeartbeats = answerHeartbeats;
    ws.accept();
    ws.addEventListener('message', (e) => {
      const msg = JobStreamMessageSchema.parse(JSON.parse(e.data as string)) as JobStreamMessage;
      this.messages.push(msg);
      if (msg.type === 'heartbeat' && this.answerHeartbeats) ws.send(JSON.stringify({ type: 'pong' }));
      this.wake();
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  events(): JobEvent[] {
    return this.messages.filter((m): m is JobEvent => m.type !== 'heartbeat' && 'seq' in m);
  }

  async until(done: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.messages.map((m) => m.type))}, closed ${JSON.stringify(this.closed)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  untilEvents(n: number) {
    return this.until(() => this.events().length >= n, `${n} events`);
  }

  async closedWith(): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, 'close');
    return this.closed!;
  }

  send(msg: unknown) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  close() {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // already closed
    }
  }
}

async function watch(jobId: string, query = '', opts: { answerHeartbeats?: boolean; ip?: string } = {}): Promise<Watcher> {
  const res = await api(`/api/v1/jobs/${jobId}/stream${query}`, { headers: { upgrade: 'websocket' }, ip: opts.ip });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  return new Watcher(res.webSocket, opts.answerHeartbeats ?? true);
}

function stubOf(jobId: string): DurableObjectStub<Job> {
  return jobStub(E, jobId);
}

describe('creating a job over REST', () => {
  it('needs the admin token and returns an unguessable id, a publish token and both links', async () => {
    expect((await errorOf(await api('/api/v1/jobs', { method: 'POST' }))).code).toBe('unauthorized');
    const wrong = await api('/api/v1/jobs', { method: 'POST', headers: { authorization: 'Bearer nope' } });
    expect(await errorOf(wrong)).toMatchObject({ status: 401, code: 'unauthorized' });

    const a = await createViaApi({ title: 'ingest 3 tracks' });
    const b = await createViaApi();
    expect(a.job_id).toMatch(JOB_ID_PATTERN);
    expect(a.job_id).not.toBe(b.job_id);
    expect(Buffer.from(a.publish_token, 'base64url').length).toBe(32);
    expect(a.stream_url).toBe(`ws://roomtone.test/api/v1/jobs/${a.job_id}/stream`);
    expect(a.status_url).toBe(`http://roomtone.test/api/v1/jobs/${a.job_id}`);
    const s = await status(a.job_id);
    expect(s).toMatchObject({ job_id: a.job_id, kind: 'test', title: 'ingest 3 tracks', state: 'pending', progress: 0, seq: 0, heartbeat_ms: 30_000, retention_s: 604_800 });
    expect(JSON.stringify(s)).not.toContain(a.publish_token);
  });

  it('refuses bad bodies with typed errors', async () => {
    const cases: Array<[string, string]> = [
      ['{"kind":', 'bad_json'],
      [JSON.stringify({ kind: 'Has Spaces' }), 'bad_request'],
      [JSON.stringify({ heartbeat_ms: 5 }), 'bad_request'],
      [JSON.stringify({ retention_s: 0 }), 'bad_request'],
      [JSON.stringify({ surprise: true }), 'bad_request'],
    ];
    for (const [body, code] of cases) {
      const res = await api('/api/v1/jobs', { method: 'POST', headers: ADMIN, body });
      expect(await errorOf(res), body).toMatchObject({ status: 400, code });
    }
  });

  it('limits how many jobs one client creates per minute', async () => {
    const limited = { ...E, JOBS_PER_MIN: '3' };
    const create = (ip: string) =>
      app.fetch(new Request('http://roomtone.test/api/v1/jobs', { method: 'POST', headers: { ...ADMIN, 'cf-connecting-ip': ip }, body: '{}' }), limited, createExecutionContext());
    for (let i = 0; i < 3; i++) expect((await create('203.0.113.77')).status).toBe(201);
    const res = await create('203.0.113.77');
    expect(await errorOf(res)).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await create('203.0.113.78')).status).toBe(201); // another client is not affected
  });
});

describe('publishing events', () => {
  it('stamps each event with the next sequence and the server time, and reports the whole status', async () => {
    const job = await createViaApi();
    const before = Date.now();
    const r1 = await post(job.job_id, job.publish_token, { type: 'progress', progress: 5, stage: 'decoding', message: 'file 1 of 4' });
    expect(r1.status).toBe(200);
    const p1 = await r1.json<{ seq: number; timestamp: number; duplicate: boolean }>();
    expect(p1).toMatchObject({ ok: true, seq: 1, duplicate: false });
    expect(p1.timestamp).toBeGreaterThanOrEqual(before);
    const p2 = await (await post(job.job_id, job.publish_token, { type: 'progress', progress: 5, stage: 'fingerprinting' })).json<{ seq: number; timestamp: number }>();
    expect(p2.seq).toBe(2);
    expect(p2.timestamp).toBeGreaterThanOrEqual(p1.timestamp);
    const running = await status(job.job_id);
    expect(running).toMatchObject({ state: 'running', progress: 5, stage: 'fingerprinting', message: null, seq: 2, finished_ms: null });

    const done = await post(job.job_id, job.publish_token, { type: 'completed', result_url: 'https://example.com/r/1', summary: { tracks: 4 } });
    expect((await done.json<{ seq: number }>()).seq).toBe(3);
    const final = await status(job.job_id, '?after=0');
    expect(final).toMatchObject({ state: 'completed', progress: 100, seq: 3, result_url: 'https://example.com/r/1', summary: { tracks: 4 }, error: null, more: false });
    expect(final.finished_ms).toBeGreaterThanOrEqual(p2.timestamp);
    expect(final.events!.map((e) => [e.seq, e.type])).toEqual([[1, 'progress'], [2, 'progress'], [3, 'completed']]);
    expect(final.events![0]).toMatchObject({ job_id: job.job_id, progress: 5, stage: 'decoding', message: 'file 1 of 4' });
  });

  it('records a failure with its message, retryability and stage', async () => {
    const job = await createViaApi();
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 40, stage: 'analysis' });
    const res = await post(job.job_id, job.publish_token, { type: 'error', message: 'decoder gave up', retryable: true });
    expect(res.status).toBe(200);
    const s = await status(job.job_id, '?after=1');
    expect(s).toMatchObject({ state: 'error', progress: 40, error: { message: 'decoder gave up', retryable: true, stage: 'analysis' }, result_url: null });
    expect(s.events).toEqual([expect.objectContaining({ type: 'error', seq: 2, stage: 'analysis', retryable: true })]);
  });

  it('never lets progress go backwards, but accepts the same value again', async () => {
    const job = await createViaApi();
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 50, stage: 'a' });
    const back = await post(job.job_id, job.publish_token, { type: 'progress', progress: 49.5, stage: 'b' });
    expect(await errorOf(back)).toMatchObject({ status: 409, code: 'conflict' });
    expect((await post(job.job_id, job.publish_token, { type: 'progress', progress: 50, stage: 'b' })).status).toBe(200);
    expect(await status(job.job_id)).toMatchObject({ progress: 50, stage: 'b', seq: 2 });
  });

  it('accepts nothing after completed or error, with a clear 409', async () => {
    for (const terminal of [{ type: 'completed' }, { type: 'error', message: 'x', retryable: false }]) {
      const job = await createViaApi();
      expect((await post(job.job_id, job.publish_token, terminal)).status).toBe(200);
      for (const next of [{ type: 'progress', progress: 100, stage: 'late' }, { type: 'completed' }, { type: 'error', message: 'y', retryable: true }]) {
        const e = await errorOf(await post(job.job_id, job.publish_token, next));
        expect(e).toMatchObject({ status: 409, code: 'invalid_state' });
        expect(e.message).toMatch(/accepts no more events/);
      }
      expect((await status(job.job_id)).seq).toBe(1);
    }
  });

  it('answers a retried event with the same id instead of logging it twice', async () => {
    const job = await createViaApi();
    const first = await (await post(job.job_id, job.publish_token, { type: 'completed', id: 'done-1' })).json<Record<string, unknown>>();
    const again = await (await post(job.job_id, job.publish_token, { type: 'completed', id: 'done-1' })).json<Record<string, unknown>>();
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ ...first, duplicate: true });
    expect((await status(job.job_id)).seq).toBe(1);
  });

  it('refuses missing and wrong publish tokens, and the admin token too', async () => {
    const job = await createViaApi();
    const other = await createViaApi();
    const body = { type: 'progress', progress: 1, stage: 's' };
    expect(await errorOf(await post(job.job_id, null, body))).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await errorOf(await post(job.job_id, other.publish_token, body))).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await errorOf(await post(job.job_id, 'test-admin-token', body))).toMatchObject({ status: 401, code: 'unauthorized' });
    expect((await status(job.job_id)).seq).toBe(0);
  });

  it('refuses bad event bodies with typed errors and loses nothing', async () => {
    const job = await createViaApi();
    const cases: Array<[unknown, number, string]> = [
      ['not json', 400, 'bad_json'],
      [{ type: 'progress', progress: 101, stage: 's' }, 400, 'bad_request'],
      [{ type: 'progress', progress: -1, stage: 's' }, 400, 'bad_request'],
      [{ type: 'progress', progress: 'half', stage: 's' }, 400, 'bad_request'],
      [{ type: 'progress', progress: 1 }, 400, 'bad_request'],
      [{ type: 'progress', progress: 1, stage: 's', timestamp: 5 }, 400, 'bad_request'],
      [{ type: 'progress', progress: 1, stage: 'x'.repeat(101) }, 400, 'bad_request'],
      [{ type: 'completed', result_url: 'not a url' }, 400, 'bad_request'],
      [{ type: 'error', message: 'no retryable' }, 400, 'bad_request'],
      [{ type: 'heartbeat' }, 400, 'bad_request'],
      [{ type: 'completed', summary: 'x'.repeat(20_000) }, 413, 'too_large'],
    ];
    for (const [body, code, name] of cases) {
      const e = await errorOf(await post(job.job_id, job.publish_token, body));
      expect(e, JSON.stringify(body).slice(0, 80)).toMatchObject({ status: code, code: name });
    }
    const typed = await errorOf(await post(job.job_id, job.publish_token, { type: 'progress', progress: 101, stage: 's' }));
    expect(typed.issues?.join(' ')).toMatch(/progress/);
    expect(await status(job.job_id)).toMatchObject({ seq: 0, state: 'pending' });
  });

  it('answers 404 for unknown and malformed job ids', async () => {
    const unknown = 'job_' + 'A'.repeat(24);
    expect(await errorOf(await api(`/api/v1/jobs/${unknown}`))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await errorOf(await api('/api/v1/jobs/../../etc'))).toMatchObject({ status: 404 });
    expect(await errorOf(await api('/api/v1/jobs/job_short'))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await errorOf(await post(unknown, 'x', { type: 'completed' }))).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('pages a long event log for polling clients with after and more', async () => {
    const job = await createJob(E, { kind: 'test', origin: 'http://roomtone.test' });
    const total = MAX_JOB_EVENTS_PER_POLL + 5;
    for (let i = 0; i < total - 1; i++) await job.publisher.progress((i / total) * 100, 'counting');
    await job.publisher.completed();
    const page1 = await status(job.job_id, '?after=0');
    expect(page1.events).toHaveLength(MAX_JOB_EVENTS_PER_POLL);
    expect(page1.more).toBe(true);
    const page2 = await status(job.job_id, `?after=${page1.events!.at(-1)!.seq}`);
    expect(page2.more).toBe(false);
    expect(page2.events!.map((e) => e.seq)).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect(page2.events!.at(-1)!.type).toBe('completed');
    expect(await errorOf(await api(`/api/v1/jobs/${job.job_id}?after=-1`))).toMatchObject({ status: 400, code: 'bad_request' });
    expect(await errorOf(await api(`/api/v1/jobs/${job.job_id}?after=1.5`))).toMatchObject({ status: 400, code: 'bad_request' });
  });
});

describe('the event rules, for any sequence of events', () => {
  it('accepts exactly the events a model accepts: sequences without gaps, progress never lower, nothing after the end', async () => {
    type Op = { type: 'progress'; progress: number } | { type: 'completed' } | { type: 'error'; retryable: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ type: fc.constant('progress' as const), progress: fc.integer({ min: 0, max: 100 }) }) },
      { weight: 1, arbitrary: fc.constant({ type: 'completed' as const }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('error' as const), retryable: fc.boolean() }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        const job = await createJob(E, { kind: 'property', origin: 'http://roomtone.test' });
        let seq = 0;
        let progress = 0;
        let ended: 'completed' | 'error' | null = null;
        for (const o of ops) {
          const input = o.type === 'progress' ? { ...o, stage: 's' } : o.type === 'error' ? { ...o, message: 'm' } : o;
          const expected = ended ? 'invalid_state' : o.type === 'progress' && o.progress < progress ? 'conflict' : 'ok';
          const got = await publishJobEvent(E, job.job_id, job.publish_token, input).then(
            (r) => (expect(r.seq).toBe(seq + 1), 'ok'),
            (e: RoomtoneError) => e.code,
          );
          expect(got).toBe(expected);
          if (got !== 'ok') continue;
          seq++;
          if (o.type === 'progress') progress = o.progress;
          else ended = o.type;
          if (o.type === 'completed') progress = 100;
        }
        const s = await jobStatus(E, job.job_id, 0);
        expect(s).toMatchObject({ seq, progress, state: ended ?? (seq === 0 ? 'pending' : 'running') });
        expect(s!.events!.map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
      }),
      { numRuns: 25 },
    );
  });
});

describe('the job stream', () => {
  it('sends progress, then completed, each with job id, sequence and timestamp, and closes after the end', async () => {
    const job = await createViaApi();
    const w = await watch(job.job_id);
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 10, stage: 'decoding', message: 'hi' });
    await w.untilEvents(1);
    expect(w.events()[0]).toMatchObject({ type: 'progress', job_id: job.job_id, seq: 1, progress: 10, stage: 'decoding', message: 'hi' });
    expect(w.events()[0].timestamp).toBeGreaterThan(0);
    expect((await status(job.job_id)).watchers).toBe(1);
    await post(job.job_id, job.publish_token, { type: 'completed', result_url: 'https://example.com/x', summary: { n: 1 } });
    expect(await w.closedWith()).toEqual({ code: 1000, reason: 'job completed' });
    expect(w.events().at(-1)).toMatchObject({ type: 'completed', seq: 2, result_url: 'https://example.com/x', summary: { n: 1 } });
  });

  it('sends a failure as an error event with a sequence, then closes', async () => {
    const job = await createViaApi();
    const w = await watch(job.job_id);
    await post(job.job_id, job.publish_token, { type: 'error', message: 'out of memory', retryable: false, stage: 'fft' });
    expect(await w.closedWith()).toEqual({ code: 1000, reason: 'job failed' });
    expect(w.events()).toEqual([expect.objectContaining({ type: 'error', seq: 1, message: 'out of memory', retryable: false, stage: 'fft', job_id: job.job_id })]);
    expect(w.messages.map((m) => m.type)).toEqual(['heartbeat', 'error']);
  });

  it('replays the whole history to a client that gives no sequence, then goes on live', async () => {
    const job = await createViaApi();
    for (let p = 1; p <= 3; p++) await post(job.job_id, job.publish_token, { type: 'progress', progress: p, stage: 's' });
    const w = await watch(job.job_id);
    await w.untilEvents(3);
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 4, stage: 's' });
    await w.untilEvents(4);
    expect(w.events().map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    w.close();
  });

  it('gives a reconnecting client exactly the events after the sequence it saw', async () => {
    const job = await createViaApi();
    const first = await watch(job.job_id);
    for (let p = 1; p <= 2; p++) await post(job.job_id, job.publish_token, { type: 'progress', progress: p, stage: 's' });
    await first.untilEvents(2);
    first.close();
    for (let p = 3; p <= 5; p++) await post(job.job_id, job.publish_token, { type: 'progress', progress: p, stage: 's' });
    const again = await watch(job.job_id, '?after=2');
    await again.untilEvents(3);
    await post(job.job_id, job.publish_token, { type: 'completed' });
    await again.closedWith();
    expect(again.events().map((e) => e.seq)).toEqual([3, 4, 5, 6]);
  });

  it('replays on a resume message after the given sequence, on the same socket', async () => {
    const job = await createViaApi();
    for (let p = 1; p <= 3; p++) await post(job.job_id, job.publish_token, { type: 'progress', progress: p, stage: 's' });
    const w = await watch(job.job_id, '?after=3');
    w.send({ type: 'resume', after: 1 });
    await w.untilEvents(2);
    expect(w.events().map((e) => e.seq)).toEqual([2, 3]);
    w.send({ type: 'resume', after: 9 });
    await w.until(() => w.messages.some((m) => m.type === 'error' && 'code' in m), 'an error frame');
    expect(w.messages.at(-1)).toMatchObject({ type: 'error', code: 'bad_request', id: null });
    expect(w.closed).toBeNull();
    w.close();
  });

  it('gives a client that connects after the end the final state at once, then closes', async () => {
    const job = await createViaApi();
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 50, stage: 's' });
    await post(job.job_id, job.publish_token, { type: 'completed', result_url: 'https://example.com/done' });
    const all = await watch(job.job_id);
    expect(await all.closedWith()).toEqual({ code: 1000, reason: 'job completed' });
    expect(all.events().map((e) => e.type)).toEqual(['progress', 'completed']);
    const missedEnd = await watch(job.job_id, '?after=1');
    await missedEnd.closedWith();
    expect(missedEnd.events()).toEqual([expect.objectContaining({ type: 'completed', seq: 2, result_url: 'https://example.com/done' })]);
    // Even a client that had seen the end hears it again: every connection to an ended job ends with it.
    const sawEverything = await watch(job.job_id, '?after=2');
    expect((await sawEverything.closedWith()).code).toBe(1000);
    expect(sawEverything.messages).toEqual([expect.objectContaining({ type: 'completed', seq: 2 })]);
  });

  it('tells a client whose sequence is beyond the log, and carries on live', async () => {
    const job = await createViaApi();
    const w = await watch(job.job_id, '?after=7');
    await w.until(() => w.messages.length > 0, 'an error frame');
    expect(w.messages[0]).toMatchObject({ type: 'error', code: 'bad_request' });
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 1, stage: 's' });
    await w.untilEvents(1);
    expect(w.events()[0].seq).toBe(1);
    w.close();
  });

  it('answers bad client messages with typed error frames and keeps the socket', async () => {
    const job = await createViaApi();
    const w = await watch(job.job_id);
    const frames: Array<[unknown, string]> = [
      ['{nope', 'bad_json'],
      [{ type: 'subscribe' }, 'unknown_type'],
      [{ type: 'resume' }, 'bad_request'],
      [{ type: 'resume', after: -3 }, 'bad_request'],
      [{ type: 'pong', extra: 1 }, 'bad_request'],
      ['x'.repeat(2000), 'too_large'],
    ];
    for (const [frame] of frames) w.send(frame);
    w.ws.send(new Uint8Array([1, 2, 3]));
    const refusals = () => w.messages.filter((m) => m.type === 'error' && 'code' in m);
    await w.until(() => refusals().length >= frames.length + 1, 'error frames');
    expect(refusals().map((m) => (m.type === 'error' && 'code' in m ? m.code : m.type))).toEqual([...frames.map((f) => f[1]), 'bad_request']);
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 3, stage: 's' });
    await w.untilEvents(1);
    expect(w.closed).toBeNull();
    w.close();
  });

  it('refuses requests that are not upgrades, bad sequences and unknown jobs', async () => {
    const job = await createViaApi();
    expect((await api(`/api/v1/jobs/${job.job_id}/stream`)).status).toBe(426);
    const bad = await api(`/api/v1/jobs/${job.job_id}/stream?after=abc`, { headers: { upgrade: 'websocket' } });
    expect(await errorOf(bad)).toMatchObject({ status: 400, code: 'bad_request' });
    const unknown = await api(`/api/v1/jobs/job_${'B'.repeat(24)}/stream`, { headers: { upgrade: 'websocket' } });
    expect(await errorOf(unknown)).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('limits stream connections per client', async () => {
    const job = await createViaApi();
    const limited = { ...E, JOB_STREAMS_PER_MIN: '3' };
    const connect = (ip: string) =>
      app.fetch(new Request(`http://roomtone.test/api/v1/jobs/${job.job_id}/stream`, { headers: { upgrade: 'websocket', 'cf-connecting-ip': ip } }), limited, createExecutionContext());
    const open: WebSocket[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await connect('198.51.100.9');
      expect(res.status).toBe(101);
      res.webSocket!.accept();
      open.push(res.webSocket!);
    }
    const refused = await connect('198.51.100.9');
    expect(await errorOf(refused)).toMatchObject({ status: 429, code: 'rate_limited' });
    expect((await connect('198.51.100.10')).status).toBe(101);
    for (const ws of open) ws.close(1000);
  });
});

describe('heartbeats', () => {
  it('sends a first heartbeat on connect, after the replay, with the head of the log', async () => {
    const job = await createViaApi();
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 1, stage: 's' });
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 2, stage: 's' });
    const w = await watch(job.job_id, '?after=1');
    await w.until(() => w.messages.length >= 2, 'the replay and a heartbeat');
    expect(w.messages).toEqual([expect.objectContaining({ type: 'progress', seq: 2 }), expect.objectContaining({ type: 'heartbeat', seq: 2, interval_ms: 30_000 })]);
    w.close();
  });

  it('sends heartbeats with the latest sequence and keeps clients that answer', async () => {
    const job = await createViaApi({ heartbeat_ms: 200 });
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 1, stage: 's' });
    const w = await watch(job.job_id);
    await w.until(() => w.messages.filter((m) => m.type === 'heartbeat').length >= 3, 'three heartbeats', 5000);
    const hb = w.messages.find((m) => m.type === 'heartbeat')!;
    expect(hb).toMatchObject({ type: 'heartbeat', job_id: job.job_id, seq: 1, interval_ms: 200 });
    expect(w.closed).toBeNull();
    w.close();
  });

  it('drops a client that stops answering heartbeats', async () => {
    const job = await createViaApi({ heartbeat_ms: 200 });
    const alive = await watch(job.job_id);
    const silent = await watch(job.job_id, '', { answerHeartbeats: false });
    expect(await silent.closedWith()).toEqual({ code: 4008, reason: 'no pong to the last heartbeat' });
    expect(silent.messages.filter((m) => m.type === 'heartbeat').length).toBeGreaterThanOrEqual(1);
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 9, stage: 's' });
    await alive.untilEvents(1);
    expect(alive.closed).toBeNull();
    expect((await status(job.job_id)).watchers).toBe(1);
    alive.close();
  });

  it('stops heartbeats when nobody watches, leaving only the retention alarm', async () => {
    const job = await createViaApi({ heartbeat_ms: 200, retention_s: 3600 });
    const w = await watch(job.job_id);
    const stub = stubOf(job.job_id);
    expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBeLessThan(Date.now() + 1000);
    w.close();
    await sleep(50);
    await runDurableObjectAlarm(stub);
    const next = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(next).toBeGreaterThan(Date.now() + 3000 * 1000);
  });
});

describe('durability', () => {
  it('loses nothing when the job object is evicted between events', async () => {
    const job = await createViaApi({ heartbeat_ms: 300 });
    const stub = stubOf(job.job_id);
    const w = await watch(job.job_id);
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 10, stage: 'one' });
    await w.untilEvents(1);
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    await post(job.job_id, job.publish_token, { type: 'progress', progress: 20, stage: 'two' });
    await w.untilEvents(2);
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    // Heartbeats go on after eviction: the socket's attachment came back with it.
    const beats = () => w.messages.filter((m) => m.type === 'heartbeat').length;
    const before = beats();
    await w.until(() => beats() > before, 'a heartbeat after eviction', 3000);
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    const late = await watch(job.job_id, '?after=1');
    await post(job.job_id, job.publish_token, { type: 'completed', summary: { ok: true } });
    await w.closedWith();
    await late.closedWith();
    expect(w.events().map((e) => [e.seq, e.type])).toEqual([[1, 'progress'], [2, 'progress'], [3, 'completed']]);
    expect(late.events().map((e) => e.seq)).toEqual([2, 3]);
    await evictDurableObject(stub).catch(() => undefined); // may already be idle
    expect(await status(job.job_id)).toMatchObject({ state: 'completed', seq: 3, progress: 100, stage: 'two', summary: { ok: true } });
    // The publish token and terminal rule survive too.
    expect(await errorOf(await post(job.job_id, job.publish_token, { type: 'completed' }))).toMatchObject({ status: 409 });
  });

  it('keeps hundreds of quiet watchers through hibernation and reaches every one with the next event', async () => {
    const job = await createViaApi();
    const stub = stubOf(job.job_id);
    const watchers = await Promise.all(Array.from({ length: 300 }, () => watch(job.job_id)));
    expect((await status(job.job_id)).watchers).toBe(300);
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    await post(job.job_id, job.publish_token, { type: 'completed', summary: { watched: 300 } });
    await Promise.all(watchers.map((w) => w.closedWith()));
    for (const w of watchers) expect(w.events()).toEqual([expect.objectContaining({ type: 'completed', seq: 1, summary: { watched: 300 } })]);
  });

  it('deletes a finished job after its retention, by alarm', async () => {
    const job = await createViaApi({ retention_s: 1 });
    await post(job.job_id, job.publish_token, { type: 'completed' });
    const stub = stubOf(job.job_id);
    await runDurableObjectAlarm(stub); // early: the job is kept and the alarm stays set
    expect((await status(job.job_id)).state).toBe('completed');
    await sleep(1100);
    await runDurableObjectAlarm(stub); // it may have fired on its own: either way the job is gone
    expect(await errorOf(await api(`/api/v1/jobs/${job.job_id}`))).toMatchObject({ status: 404, code: 'not_found' });
    const tables = await runInDurableObject(stub, (_o, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('job', 'events')").toArray());
    expect(tables).toEqual([]);
    expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBeNull();
  });

  it('deletes an abandoned job a retention after its last event, closing its watchers', async () => {
    const job = await createViaApi({ retention_s: 1, heartbeat_ms: 5000 });
    const w = await watch(job.job_id);
    await sleep(1100);
    await runDurableObjectAlarm(stubOf(job.job_id));
    expect((await w.closedWith()).code).toBe(4010);
    expect((await api(`/api/v1/jobs/${job.job_id}`)).status).toBe(404);
  });
});

describe('the server-side job library', () => {
  it('creates a job whose publisher posts events that the stream delivers', async () => {
    const job = await createJob(E, { kind: 'catalog.ingest', title: 'ingest', origin: 'https://edge.example' });
    expect(job.stream_url).toBe(`wss://edge.example/api/v1/jobs/${job.job_id}/stream`);
    expect(job.status_url).toBe(`https://edge.example/api/v1/jobs/${job.job_id}`);
    const w = await watch(job.job_id);
    expect((await job.publisher.progress(10, 'decoding', 'track 1')).seq).toBe(1);
    // A publisher rebuilt elsewhere from the id and token carries on the same job.
    const again = jobPublisher(E, job.job_id, job.publish_token);
    await again.progress(60, 'fingerprinting');
    await again.completed('https://edge.example/api/v1/catalog', { tracks: 1 });
    await w.closedWith();
    expect(w.events().map((e) => e.type)).toEqual(['progress', 'progress', 'completed']);
  });

  it('throws typed errors for refused events', async () => {
    const job = await createJob(E, { kind: 'analysis.file', origin: 'http://roomtone.test' });
    await job.publisher.progress(30, 'a');
    await expect(job.publisher.progress(20, 'b')).rejects.toMatchObject({ name: 'RoomtoneError', code: 'conflict' });
    await expect(job.publisher.progress(120, 'b')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(publishJobEvent(E, job.job_id, 'wrong', { type: 'completed' })).rejects.toBeInstanceOf(RoomtoneError);
    await job.publisher.error('gave up', true);
    await expect(job.publisher.completed()).rejects.toMatchObject({ code: 'invalid_state' });
    await expect(createJob(E, { kind: 'No Spaces', origin: 'http://x' })).rejects.toMatchObject({ code: 'bad_request' });
  });
});
