// Property-based: whatever a job's creator, publisher or watcher sends, the
// service answers with a typed error or a valid answer, never a 500, and the
// job keeps exactly the events it accepted.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { api, sleep } from './helpers.ts';
import { ERROR_STATUS, JobStreamMessageSchema, type CreatedJob, type JobStatusWithEvents, type JobStreamMessage } from '../../src/protocol/index.ts';

const ERROR_CODES = Object.keys(ERROR_STATUS);
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

let ipCounter = 0;
// Each property gets its own client address, so per-client limits do not mix with other tests.
const ip = (name: string) => `10.9.${name.length}.${ipCounter++ % 250}`;

async function typedError(res: Response): Promise<string> {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  const body = await res.json<{ error: { code: string; message: string } }>();
  expect(ERROR_CODES).toContain(body.error.code);
  expect(ERROR_STATUS[body.error.code as keyof typeof ERROR_STATUS]).toBe(res.status);
  expect(typeof body.error.message).toBe('string');
  return body.error.code;
}

async function createJob(): Promise<CreatedJob> {
  const res = await api('/api/v1/jobs', { method: 'POST', headers: ADMIN, body: JSON.stringify({ kind: 'fuzz' }), ip: ip('create') });
  expect(res.status).toBe(201);
  return res.json();
}

async function status(jobId: string, query = ''): Promise<JobStatusWithEvents> {
  const res = await api(`/api/v1/jobs/${jobId}${query}`);
  expect(res.status).toBe(200);
  return res.json();
}

const anyJson = fc.jsonValue().map((v) => JSON.stringify(v));
const num = fc.oneof(fc.double(), fc.integer({ min: -5, max: 105 }), fc.constant(1e308), fc.string({ maxLength: 5 }), fc.constant(null));

/** Job events shaped like ours with values of every kind, some of them valid. */
const eventBody = fc.oneof(
  anyJson,
  fc.string({ maxLength: 200 }),
  fc
    .record(
      {
        type: fc.constantFrom('progress', 'completed', 'error', 'heartbeat', 'nope'),
        progress: num,
        stage: fc.oneof(fc.string({ maxLength: 120 }), fc.integer()),
        message: fc.oneof(fc.string({ maxLength: 50 }), fc.constant(null)),
        retryable: fc.oneof(fc.boolean(), fc.string({ maxLength: 3 })),
        result_url: fc.oneof(fc.webUrl(), fc.string({ maxLength: 20 })),
        summary: fc.jsonValue({ maxDepth: 2 }),
        id: fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.string({ maxLength: 70 }), fc.integer()),
        seq: fc.integer(),
      },
      { requiredKeys: ['type'] },
    )
    .map((v) => JSON.stringify(v)),
);

describe('job input, property-based', () => {
  it('answers every job-creation body with 201 or a typed 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          anyJson,
          fc.string({ maxLength: 100 }),
          fc
            .record({ kind: fc.oneof(fc.constantFrom('fuzz', 'a.b-c_d', 'Bad Kind', ''), fc.string({ maxLength: 70 })), title: fc.oneof(fc.string({ maxLength: 210 }), fc.integer()), heartbeat_ms: num, retention_s: num, extra: fc.boolean() }, { requiredKeys: [] })
            .map((v) => JSON.stringify(v)),
        ),
        async (body) => {
          const res = await api('/api/v1/jobs', { method: 'POST', headers: ADMIN, body, ip: ip('create-fuzz') });
          if (res.status === 201) {
            const job = await res.json<CreatedJob>();
            expect((await status(job.job_id)).state).toBe('pending');
          } else await typedError(res);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('answers every event body with 200 or a typed 4xx, and the job holds exactly the events it accepted', async () => {
    const job = await createJob();
    let accepted = 0;
    const ids = new Set<string>();
    await fc.assert(
      fc.asyncProperty(eventBody, async (body) => {
        const res = await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { ...ADMIN, authorization: `Bearer ${job.publish_token}` }, body });
        if (res.status === 200) {
          const ok = await res.json<{ ok: true; seq: number; duplicate: boolean }>();
          const id = (JSON.parse(body) as { id?: string }).id;
          // A retried id is answered, not logged twice.
          expect(ok.duplicate).toBe(id !== undefined && ids.has(id));
          if (!ok.duplicate) expect(ok.seq).toBe(++accepted);
          if (id !== undefined) ids.add(id);
        } else await typedError(res);
      }),
      { numRuns: 150 },
    );
    const s = await status(job.job_id, '?after=0');
    expect(s.seq).toBe(accepted);
    expect(s.events!.map((e) => e.seq)).toEqual(Array.from({ length: accepted }, (_, i) => i + 1));
  });

  it('answers every status query with 200 or a typed 400', async () => {
    const job = await createJob();
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String), fc.double().map(String)), async (after) => {
        const res = await api(`/api/v1/jobs/${job.job_id}?after=${encodeURIComponent(after)}`);
        if (res.status === 200) expect((await res.json<JobStatusWithEvents>()).job_id).toBe(job.job_id);
        else expect(await typedError(res)).toBe('bad_request');
      }),
      { numRuns: 80 },
    );
  });

  it('answers every frame on a job stream with nothing, a replay or a typed error, and then delivers the next event once', async () => {
    const job = await createJob();
    const publish = (b: unknown) =>
      api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { ...ADMIN, authorization: `Bearer ${job.publish_token}` }, body: JSON.stringify(b) });
    expect((await publish({ type: 'progress', progress: 10, stage: 'one' })).status).toBe(200);
    const res = await api(`/api/v1/jobs/${job.job_id}/stream?after=1`, { headers: { upgrade: 'websocket' }, ip: ip('stream') });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const got: JobStreamMessage[] = [];
    let closed: number | null = null;
    // Receivers parse, never cast: a frame outside the protocol fails the test here.
    ws.addEventListener('message', (e) => got.push(JobStreamMessageSchema.parse(JSON.parse(e.data as string)) as JobStreamMessage));
    ws.addEventListener('close', (e) => {
      closed = e.code;
    });
    const frame = fc.oneof(
      anyJson,
      fc.string({ maxLength: 100 }),
      fc.uint8Array({ maxLength: 32 }),
      fc.constant('x'.repeat(2000)),
      fc.record({ type: fc.constantFrom('pong', 'resume', 'ping', 'hello'), seq: num, after: fc.oneof(num, fc.integer({ min: 0, max: 3 })) }, { requiredKeys: ['type'] }).map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        ws.send(f);
        // Under the stream's 20 messages a second.
        await sleep(60);
      }),
      { numRuns: 80 },
    );
    await sleep(200);
    expect(closed).toBeNull();
    for (const m of got) {
      if (m.type === 'error' && 'code' in m) expect(ERROR_CODES).toContain(m.code);
      // The only events are replays of the one logged so far.
      if (m.type === 'progress') expect(m.seq).toBe(1);
    }
    expect((await status(job.job_id)).seq).toBe(1);
    const before = got.length;
    expect((await publish({ type: 'completed' })).status).toBe(200);
    const deadline = Date.now() + 5000;
    while (closed === null && Date.now() < deadline) await sleep(20);
    const live = got.slice(before).filter((m) => m.type === 'completed');
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ seq: 2, job_id: job.job_id });
    expect(closed).toBe(1000);
  });
});

/** A token-like string that cannot occur in any message of ours by chance. */
const marker = fc.integer({ min: 1e9, max: 2 ** 52 }).map((n) => `qz${n.toString(36)}xq`);

/** Puts the marker in one field (key or value) of an otherwise plausible body. */
function withMarker(m: string): fc.Arbitrary<{ what: string; body: string }> {
  const bodies: Array<[string, unknown]> = [
    ['kind', { kind: `${m}!` }],
    ['unknown key', { kind: 'fuzz', [m]: 1 }],
    ['nested unknown key', { type: 'progress', progress: 5, stage: 's', [m]: { a: 1 } }],
    ['type', { type: m }],
    ['progress', { type: 'progress', progress: m, stage: 's' }],
    ['retryable', { type: 'error', message: 'x', retryable: m }],
    ['result_url', { type: 'completed', result_url: `${m} not a url` }],
    ['id', { type: 'progress', progress: 5, stage: 's', id: { [m]: m } }],
    ['heartbeat_ms', { kind: 'fuzz', heartbeat_ms: m }],
    ['title', { kind: 'fuzz', title: m.repeat(100) }],
    ['stage', { type: 'progress', progress: 5, stage: m.repeat(40) }],
  ];
  return fc.oneof(
    fc.constantFrom(...bodies).map(([what, b]) => ({ what, body: JSON.stringify(b) })),
    fc.constant({ what: 'not JSON', body: `{${m}` }),
    fc.constant({ what: 'a bare string', body: JSON.stringify(m) }),
  );
}

async function expectNoEcho(res: Response, m: string, what: string): Promise<void> {
  const text = await res.text();
  if (res.status >= 400) expect(text.includes(m), `${what}: ${res.status} ${text.slice(0, 200)}`).toBe(false);
  for (const [k, v] of res.headers) expect(v.includes(m), `${what}: header ${k}`).toBe(false);
}

describe('error answers never repeat what the client sent', () => {
  it('job creation, events, status, paths and content types', async () => {
    const job = await createJob();
    await fc.assert(
      fc.asyncProperty(
        marker.chain((m) => withMarker(m).map((b) => ({ m, ...b }))),
        async ({ m, what, body }) => {
          const client = ip('marker');
          await expectNoEcho(await api('/api/v1/jobs', { method: 'POST', headers: ADMIN, body, ip: client }), m, `create: ${what}`);
          const publisher = { ...ADMIN, authorization: `Bearer ${job.publish_token}` };
          await expectNoEcho(await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: publisher, body }), m, `event: ${what}`);
          // A wrong publish token is the classic pasted secret.
          await expectNoEcho(await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { ...ADMIN, authorization: `Bearer ${m}` }, body }), m, 'token');
          await expectNoEcho(await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { ...publisher, 'content-type': `application/${m}` }, body }), m, 'content type');
          await expectNoEcho(await api(`/api/v1/jobs/${job.job_id}?after=${m}`), m, 'after');
          await expectNoEcho(await api(`/api/v1/jobs/${m}`), m, 'job id');
          await expectNoEcho(await api(`/api/v1/jobs/${m}/stream`, { headers: { upgrade: 'websocket' } }), m, 'stream id');
          await expectNoEcho(await api(`/api/v1/${m}`), m, 'route');
        },
      ),
      { numRuns: 40 },
    );
    // Progress that goes backwards is refused without repeating the value sent.
    const publisher = { ...ADMIN, authorization: `Bearer ${job.publish_token}` };
    const accepted = await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: publisher, body: JSON.stringify({ type: 'progress', progress: 90, stage: 's' }) });
    expect(accepted.status).toBe(200);
    const back = await api(`/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: publisher, body: JSON.stringify({ type: 'progress', progress: 12.3456789, stage: 's' }) });
    expect(back.status).toBe(409);
    expect(await back.text()).not.toContain('12.3456789');
  });

  it('job stream frames', async () => {
    const job = await createJob();
    const res = await api(`/api/v1/jobs/${job.job_id}/stream?after=999999937`, { headers: { upgrade: 'websocket' }, ip: ip('marker-stream') });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const got: string[] = [];
    ws.addEventListener('message', (e) => got.push(e.data as string));
    await fc.assert(
      fc.asyncProperty(marker, fc.nat(5), async (m, shape) => {
        const from = got.length;
        const frames = [
          JSON.stringify({ type: m }),
          JSON.stringify({ type: 'resume', after: m }),
          JSON.stringify({ type: 'resume', after: 1, [m]: 1 }),
          JSON.stringify({ type: 'pong', id: m }),
          `{${m}`,
          JSON.stringify({ [m]: m }),
        ];
        ws.send(frames[shape]);
        await sleep(60);
        for (const f of got.slice(from)) expect(f.includes(m), f).toBe(false);
      }),
      { numRuns: 40 },
    );
    // The `after` beyond the log is said, not repeated.
    expect(got.some((f) => f.includes('999999937'))).toBe(false);
    ws.send(JSON.stringify({ type: 'resume', after: 999999929 }));
    await sleep(100);
    expect(got.some((f) => f.includes('beyond'))).toBe(true);
    expect(got.some((f) => f.includes('999999929'))).toBe(false);
    ws.close(1000, 'done');
  });
});
