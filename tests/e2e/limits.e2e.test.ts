// Limits, against the real worker over real sockets: body and message sizes,
// messages per second per socket, audio no faster than real time beyond the
// burst, and what one client may create or open per minute. The server runs
// with small per-client limits so each is reached in a few requests; every
// request here comes from the same client (127.0.0.1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';

const LIMITS = { ROOMS_PER_MIN: '6', JOBS_PER_MIN: '5', JOB_STREAMS_PER_MIN: '6', JOIN_FAILURES_PER_MIN: '5' };
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };

let server: LocalServer;
/** Requests counted against each per-client budget so far in this file. */
const spent = { rooms: 0, jobs: 0, streams: 0 };

beforeAll(async () => {
  server = await startLocalServer({ vars: LIMITS });
}, 90_000);
afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function post(path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; body: { error?: { code: string; retry_after_s?: number } } & Record<string, unknown>; retryAfter: string | null }> {
  if (path === '/api/v1/rooms') spent.rooms++;
  if (path === '/api/v1/jobs') spent.jobs++;
  const res = await fetch(server.url + path, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as never, retryAfter: res.headers.get('retry-after') };
}

async function createRoom(): Promise<{ code: string; control_token: string }> {
  const r = await post('/api/v1/rooms', '{}');
  expect(r.status).toBe(201);
  return r.body as never;
}

async function createJob(): Promise<{ job_id: string; publish_token: string }> {
  const r = await post('/api/v1/jobs', '{"kind":"limits"}', ADMIN);
  expect(r.status).toBe(201);
  return r.body as never;
}

/** A Node client socket that keeps every JSON message. */
class Client {
  readonly ws: WebSocket;
  readonly got: Array<Record<string, unknown> & { type: string }> = [];
  closed: number | null = null;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d, binary) => {
      if (!binary) this.got.push(JSON.parse(d.toString()));
    });
    ws.on('close', (code) => (this.closed = code));
  }
  static open(path: string): Promise<Client | number> {
    if (path.startsWith('/api/v1/jobs/')) spent.streams++;
    const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path);
    return new Promise((res) => {
      ws.once('open', () => res(new Client(ws)));
      ws.once('unexpected-response', (_req, r) => res(r.statusCode ?? 0));
    });
  }
  static async must(path: string): Promise<Client> {
    const c = await Client.open(path);
    if (typeof c === 'number') throw new Error(`upgrade of ${path} refused with ${c}`);
    return c;
  }
  send(x: unknown) {
    this.ws.send(typeof x === 'string' || x instanceof Uint8Array ? x : JSON.stringify(x));
  }
  count(pred: (m: Client['got'][number]) => boolean): number {
    return this.got.filter(pred).length;
  }
  async until(pred: (m: Client['got'][number]) => boolean, what: string, timeoutMs = 10_000): Promise<Client['got'][number]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.got.find(pred);
      if (m) return m;
      if (this.closed !== null) throw new Error(`closed (${this.closed}) while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${this.got.map((x) => x.type).join(',')}`);
      await sleep(10);
    }
  }
  close() {
    this.ws.close();
  }
}

const isError = (code: string) => (m: { type: string; code?: unknown }) => m.type === 'error' && m.code === code;

let room: { code: string; control_token: string };
let job: { job_id: string; publish_token: string };

describe('limits', () => {
  beforeAll(async () => {
    room = await createRoom();
    job = await createJob();
  });

  it('refuses bodies over 16 KiB with 413 too_large on rooms, room control, jobs and job events', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(17 * 1024) });
    const cases = [
      await post('/api/v1/rooms', big),
      await post(`/api/v1/rooms/${room.code}/transport/play`, big, { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' }),
      await post('/api/v1/jobs', big, ADMIN),
      await post(`/api/v1/jobs/${job.job_id}/events`, big, { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' }),
    ];
    expect(cases.map((c) => [c.status, c.body.error?.code])).toEqual(Array(4).fill([413, 'too_large']));
    // The room and the job are as they were.
    const t = (await (await fetch(`${server.url}/api/v1/rooms/${room.code}/transport`)).json()) as { status: string };
    expect(t.status).toBe('stopped');
    const s = (await (await fetch(`${server.url}/api/v1/jobs/${job.job_id}`)).json()) as { seq: number };
    expect(s.seq).toBe(0);
  });

  it('refuses socket messages over their size limits with too_large and keeps every socket working', async () => {
    const r = await Client.must(`/api/v1/rooms/${room.code}/ws`);
    await r.until((m) => m.type === 'welcome', 'welcome');
    r.send(JSON.stringify({ type: 'ping', id: 1, t0: 1, pad: 'x'.repeat(4096) }));
    await r.until(isError('too_large'), 'room too_large');
    r.send({ type: 'ping', id: 2, t0: 2 });
    await r.until((m) => m.type === 'pong', 'room pong');

    const j = await Client.must(`/api/v1/jobs/${job.job_id}/stream`);
    j.send(JSON.stringify({ type: 'pong', pad: 'x'.repeat(1024) }));
    await j.until(isError('too_large'), 'job stream too_large');

    const a = await Client.must(`/api/v1/analysis/limits-${Date.now()}`);
    await a.until((m) => m.type === 'welcome', 'analysis welcome');
    a.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2048) }));
    await a.until(isError('too_large'), 'analysis text too_large');
    a.send({ type: 'hello', role: 'source', sample_rate: 8000, format: 'f32' });
    await a.until((m) => m.type === 'ready', 'analysis ready');
    a.send(new Uint8Array(256 * 1024 + 4));
    await a.until((m) => isError('too_large')(m) && m.reason === 'frame_too_large', 'analysis frame too_large');
    a.send({ type: 'ping', id: 'after' });
    await a.until((m) => m.type === 'pong' && m.id === 'after', 'analysis pong');

    const m = await Client.must(`/api/v1/match/limits-${Date.now()}`);
    m.send(JSON.stringify({ type: 'hello', pad: 'x'.repeat(1024) }));
    await m.until(isError('too_large'), 'match text too_large');
    m.send({ type: 'hello', sample_rate: 8000, format: 'f32' });
    await m.until((x) => x.type === 'ready', 'match ready');
    m.send(new Uint8Array(256 * 1024 + 4));
    await m.until(() => m.count(isError('too_large')) === 2, 'match frame too_large');
    m.send({ type: 'end' });
    await m.until((x) => x.type === 'ended', 'match ended');

    for (const c of [r, j, a, m]) expect(c.closed).toBeNull();
    for (const c of [r, j, a, m]) c.close();
  });

  it('drops messages beyond the per-socket rate with rate_limited and keeps the socket', async () => {
    const r = await Client.must(`/api/v1/rooms/${room.code}/ws`);
    await r.until((m) => m.type === 'welcome', 'welcome');
    const start = Date.now();
    for (let i = 0; i < 300; i++) r.send({ type: 'ping', id: i, t0: i });
    await r.until(() => r.count((m) => m.type === 'pong' || isError('rate_limited')(m)) === 300, 'an answer to every ping', 20_000);
    const elapsedS = (Date.now() - start) / 1000;
    const pongs = r.count((m) => m.type === 'pong');
    // A burst of 80, then 40 a second.
    expect(pongs).toBeGreaterThanOrEqual(80);
    expect(pongs).toBeLessThanOrEqual(80 + Math.ceil(40 * elapsedS) + 1);
    expect(r.count(isError('rate_limited'))).toBe(300 - pongs);
    await sleep(1000);
    r.send({ type: 'ping', id: 1000, t0: 1 });
    await r.until((m) => m.type === 'pong' && m.id === 1000, 'a pong after the flood');
    expect(r.closed).toBeNull();
    r.close();

    const j = await Client.must(`/api/v1/jobs/${job.job_id}/stream`);
    const jobStart = Date.now();
    for (let i = 0; i < 150; i++) j.send({ type: 'pong' });
    // Pongs get no answer; those over the rate (a burst of 40, then 20 a second) get rate_limited.
    j.send({ type: 'resume', after: 0 });
    await j.until(isError('rate_limited'), 'job stream rate_limited');
    await sleep(500);
    const taken = 151 - j.count(isError('rate_limited'));
    expect(taken).toBeGreaterThanOrEqual(40);
    expect(taken).toBeLessThanOrEqual(40 + Math.ceil(20 * ((Date.now() - jobStart) / 1000)) + 1);
    expect(j.closed).toBeNull();
    j.close();
  });

  it('takes audio no faster than real time beyond the 2 s burst', async () => {
    const a = await Client.must(`/api/v1/analysis/rate-${Date.now()}`);
    await a.until((m) => m.type === 'welcome', 'welcome');
    a.send({ type: 'hello', role: 'source', sample_rate: 8000, format: 'f32' });
    await a.until((m) => m.type === 'ready', 'ready');
    const start = Date.now();
    // Six seconds of audio at once, in quarter-second frames.
    const frame = new Float32Array(2000).fill(0.1);
    for (let i = 0; i < 24; i++) a.send(new Uint8Array(frame.buffer.slice(0)));
    a.send({ type: 'stats', id: 'burst' });
    const stats = (await a.until((m) => m.type === 'stats' && m.id === 'burst', 'stats')) as unknown as { seconds_in: number };
    const elapsedS = (Date.now() - start) / 1000;
    expect(stats.seconds_in).toBeGreaterThanOrEqual(2);
    expect(stats.seconds_in).toBeLessThanOrEqual(2 + elapsedS + 0.25);
    const tooFast = a.count((m) => isError('rate_limited')(m) && m.reason === 'too_fast');
    expect(tooFast).toBe(24 - Math.round(stats.seconds_in / 0.25));
    // Real time refills the allowance: a second later, half a second of audio is taken again.
    await sleep(1000);
    a.send(new Uint8Array(new Float32Array(4000).fill(0.1).buffer));
    a.send({ type: 'stats', id: 'later' });
    const later = (await a.until((m) => m.type === 'stats' && m.id === 'later', 'stats later')) as unknown as { seconds_in: number };
    expect(later.seconds_in).toBeCloseTo(stats.seconds_in + 0.5, 3);
    expect(a.closed).toBeNull();
    a.close();
  });

  it('limits rooms, jobs and job stream connections per client per minute, saying when to retry', async () => {
    const statuses: number[] = [];
    while (spent.rooms < Number(LIMITS.ROOMS_PER_MIN)) statuses.push((await post('/api/v1/rooms', '{}')).status);
    expect(statuses.every((s) => s === 201)).toBe(true);
    const room429 = await post('/api/v1/rooms', '{}');
    expect([room429.status, room429.body.error?.code]).toEqual([429, 'rate_limited']);
    expect(Number(room429.retryAfter)).toBeGreaterThan(0);
    expect(room429.body.error?.retry_after_s).toBe(Number(room429.retryAfter));

    while (spent.jobs < Number(LIMITS.JOBS_PER_MIN)) expect((await post('/api/v1/jobs', '{"kind":"limits"}', ADMIN)).status).toBe(201);
    const job429 = await post('/api/v1/jobs', '{"kind":"limits"}', ADMIN);
    expect([job429.status, job429.body.error?.code]).toEqual([429, 'rate_limited']);
    expect(Number(job429.retryAfter)).toBeGreaterThan(0);

    const open: Client[] = [];
    while (spent.streams < Number(LIMITS.JOB_STREAMS_PER_MIN)) open.push(await Client.must(`/api/v1/jobs/${job.job_id}/stream`));
    expect(await Client.open(`/api/v1/jobs/${job.job_id}/stream`)).toBe(429);
    // The sockets already open are not affected.
    const published = await post(`/api/v1/jobs/${job.job_id}/events`, '{"type":"progress","progress":5,"stage":"s"}', { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' });
    expect(published.status).toBe(200);
    for (const c of open) await c.until((m) => m.type === 'progress', 'the event on an open stream');
    for (const c of open) c.close();
  });

  it('throttles a client after repeated failed joins, even for a room that exists', async () => {
    for (let i = 0; i < Number(LIMITS.JOIN_FAILURES_PER_MIN); i++) {
      expect((await fetch(`${server.url}/api/v1/rooms/ZZZZ${'23456789'[i]}Z`)).status).toBe(404);
    }
    const blocked = await fetch(`${server.url}/api/v1/rooms/${room.code}`);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await Client.open(`/api/v1/rooms/${room.code}/ws`)).toBe(429);
  });
});
