import { describe, expect, it } from 'vitest';
import { env, createExecutionContext, evictDurableObject, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import worker from '../../src/worker/index.ts';
import type { Env } from '../../src/worker/env.ts';
import type { ClientLimiter } from '../../src/durable/client-limiter.ts';
import { BASE, api, createRoom, sleep } from './helpers.ts';
import { createJob } from '../../src/lib/jobs.ts';
import { STREAM_CLOSE } from '../../src/protocol/index.ts';

// The open-connection limit across every kind of socket (rooms, relays,
// analysis, match and job streams), through the worker with the limit set low
// for these requests only: the other test files share the runtime's vars.
const LIMIT = 4;
const lowEnv = { ...(env as unknown as Env), CONNECTIONS_PER_CLIENT: String(LIMIT) } as Env;

let ipSeq = 0;
const freshIp = () => `203.0.113.${++ipSeq}`;

async function upgrade(path: string, ip: string, e: Env = lowEnv): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(BASE + path, { headers: { upgrade: 'websocket', 'cf-connecting-ip': ip } }), e, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

async function mustOpen(path: string, ip: string): Promise<WebSocket> {
  const res = await upgrade(path, ip);
  if (res.status !== 101) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  ws.accept();
  return ws;
}

function limiterOf(ip: string): DurableObjectStub<ClientLimiter> {
  return env.LIMITER.get(env.LIMITER.idFromName(ip));
}

async function openCount(ip: string): Promise<number> {
  return limiterOf(ip).openConnections();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function createJobId(): Promise<string> {
  const res = await api('/api/v1/jobs', {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'connections' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { job_id: string }).job_id;
}

async function expectRefused(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  const body = (await res.json()) as { error: { code: string; message: string; retry_after_s: number } };
  expect(body.error.code).toBe('rate_limited');
  expect(body.error.message).toContain(`at most ${LIMIT} open connections per client`);
  expect(body.error.retry_after_s).toBeGreaterThan(0);
}

describe('open connections per client', () => {
  it('counts every kind of socket together, refuses the next with a typed 429, and frees a slot on close', async () => {
    const ip = freshIp();
    const room = await createRoom();
    const job = await createJobId();
    const sockets = [
      await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip),
      await mustOpen(`/api/v1/analysis/conn-${ipSeq}`, ip),
      await mustOpen(`/api/v1/match/conn-${ipSeq}`, ip),
      await mustOpen(`/api/v1/jobs/${job}/stream`, ip),
    ];
    expect(await openCount(ip)).toBe(LIMIT);
    await expectRefused(await upgrade(`/api/v1/rooms/${room.code}/ws`, ip));
    await expectRefused(await upgrade(`/api/v1/jobs/${job}/stream`, ip));
    // Another client is not affected.
    (await mustOpen(`/api/v1/rooms/${room.code}/ws`, freshIp())).close(1000, 'done');

    sockets[0].close(1000, 'done');
    await until('the room socket to give its lease back', async () => (await openCount(ip)) === LIMIT - 1);
    sockets.push(await mustOpen(`/api/v1/analysis/conn-${ipSeq}-b`, ip));
    await expectRefused(await upgrade(`/api/v1/analysis/conn-${ipSeq}-c`, ip));
    for (const ws of sockets.slice(1)) ws.close(1000, 'done');
    await until('every lease to come back', async () => (await openCount(ip)) === 0);
  });

  it('an upgrade the object refuses holds no lease', async () => {
    const ip = freshIp();
    const room = await createRoom();
    // A tick rate out of range: the room answers 400 after the worker took the lease.
    for (let i = 0; i < LIMIT + 2; i++) expect((await upgrade(`/api/v1/rooms/${room.code}/ws?ticks=1000`, ip)).status).toBe(400);
    // A job id of the right shape that names no job: the Job object answers 404.
    for (let i = 0; i < LIMIT + 2; i++) expect((await upgrade(`/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/stream`, ip)).status).toBe(404);
    expect(await openCount(ip)).toBe(0);
  });

  it('a socket on a hibernated (evicted) object still gives its lease back', async () => {
    const ip = freshIp();
    const room = await createRoom();
    const ws = await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip);
    await evictDurableObject(env.TRANSPORT.get(env.TRANSPORT.idFromName(room.code)));
    expect(await openCount(ip)).toBe(1);
    ws.close(1000, 'done');
    await until('the lease to come back after eviction', async () => (await openCount(ip)) === 0);
  });

  it('a lease whose release was lost is reclaimed at the limit; one still held is not', async () => {
    const ip = freshIp();
    const room = await createRoom();
    const held = [await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip), await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip)];
    const limiter = limiterOf(ip);
    const roomId = env.TRANSPORT.idFromName(room.code).toString();
    // Two leases no socket holds (a release that never arrived, an object reset),
    // both old enough to have settled: the client is at its limit on paper.
    await runInDurableObject(limiter, async (_obj: ClientLimiter, state: DurableObjectState) => {
      const old = Date.now() - 120_000;
      for (const id of ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002']) {
        state.storage.sql.exec('INSERT INTO leases (id, owner, object, created_ms, checked_ms) VALUES (?, ?, ?, ?, ?)', id, 'TRANSPORT', roomId, old, old);
      }
      state.storage.sql.exec('UPDATE leases SET created_ms = ?, checked_ms = ?', old, old);
    });
    expect(await openCount(ip)).toBe(LIMIT);
    // The next upgrade asks the room, which holds only the two real sockets.
    held.push(await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip));
    expect(await openCount(ip)).toBe(3);
    held.push(await mustOpen(`/api/v1/rooms/${room.code}/ws`, ip));
    await expectRefused(await upgrade(`/api/v1/rooms/${room.code}/ws`, ip));
    expect(await openCount(ip)).toBe(LIMIT);
    for (const ws of held) ws.close(1000, 'done');
    await until('every lease to come back', async () => (await openCount(ip)) === 0);
  });

  it('a socket the server closes (a finished job) gives its lease back', async () => {
    const ip = freshIp();
    const job = await createJob(lowEnv, { kind: 'connections', origin: BASE });
    const ws = await mustOpen(`/api/v1/jobs/${job.job_id}/stream`, ip);
    const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
    expect(await openCount(ip)).toBe(1);
    await job.publisher.completed();
    expect(await closed).toBe(STREAM_CLOSE.finished);
    await until('the finished stream to give its lease back', async () => (await openCount(ip)) === 0);
  });
});
