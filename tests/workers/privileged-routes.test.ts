// Every privileged route and message of the service, tried with no token, a
// wrong one, another resource's token and an expired (or finished) resource,
// next to the right token. One table, so a route added without its check
// shows up as a row that lets the wrong caller in.
//
// Each attempt comes from its own client address: wrong tokens count as failed
// joins, and the per-client throttle must not turn a 401 into a 429 here (the
// throttle has its own tests in rooms.test.ts).

import { beforeAll, describe, expect, it } from 'vitest';
import { env, runDurableObjectAlarm } from 'cloudflare:test';
import { TestSocket, api, createRoom, sleep, type CreatedRoom } from './helpers.ts';
import type { Env } from '../../src/worker/env.ts';
import { jobStub } from '../../src/lib/jobs.ts';
import type { CreatedJob, RoomServerMessage } from '../../src/protocol/index.ts';

const E = env as Env;
const ADMIN_TOKEN = 'test-admin-token';

/** What a caller got: the HTTP status and the error code of the body or of the first error frame (null on success). */
interface Outcome {
  status: number;
  code: string | null;
}

let ipCounter = 0;
const freshIp = () => `10.8.${(ipCounter >> 8) & 255}.${ipCounter++ & 255}`;

async function outcome(res: Response): Promise<Outcome> {
  const text = await res.text();
  let code: string | null = null;
  if (res.status >= 400) code = (JSON.parse(text) as { error: { code: string } }).error.code;
  return { status: res.status, code };
}

function rest(method: string, path: string, token: string | null, body?: unknown): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return api(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), ip: freshIp() }).then(outcome);
}

async function socket(code: string, query = ''): Promise<TestSocket | Outcome> {
  const res = await api(`/api/v1/rooms/${code}/ws${query}`, { headers: { upgrade: 'websocket' }, ip: freshIp() });
  if (res.status !== 101 || !res.webSocket) return outcome(res);
  return new TestSocket(res.webSocket);
}

/**
 * The answer to one message: the error frame's code, or null for an ack. Each
 * socket is fresh and sends one message at a time, so the first ack or error
 * is the answer. Clock reports are the one message without a request id.
 */
async function answer(s: TestSocket, msg: Record<string, unknown>): Promise<Outcome> {
  const tagged = msg.type !== 'clock';
  s.send(tagged ? { ...msg, id: 'probe' } : msg);
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = s.drain().find((m): m is Extract<RoomServerMessage, { type: 'ack' | 'error' }> => m.type === 'ack' || m.type === 'error');
    if (got) return { status: 101, code: got.type === 'error' ? got.code : null };
    if (Date.now() > deadline) throw new Error(`no answer to ${JSON.stringify(msg)}`);
    await sleep(10);
  }
}

/** Opens a socket, optionally says hello with a role and token, then sends one message and reports its answer. */
async function wsAttempt(
  code: string,
  hello: { role: 'controller' | 'agent'; token: string | null } | null,
  msg: Record<string, unknown>,
  goOnAfterRefusedHello = false,
): Promise<Outcome> {
  const s = await socket(code);
  if (!(s instanceof TestSocket)) return s;
  try {
    await s.next('welcome');
    if (hello) {
      const ack = await answer(s, { type: 'hello', role: hello.role, ...(hello.token === null ? {} : { token: hello.token }) });
      if (ack.code && !goOnAfterRefusedHello) return ack;
    }
    return await answer(s, msg);
  } finally {
    s.close();
  }
}

async function createJobWith(body: Record<string, unknown> = {}): Promise<CreatedJob> {
  const res = await api('/api/v1/jobs', {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'test', ...body }),
    ip: freshIp(),
  });
  if (res.status !== 201) throw new Error(`job create failed: ${res.status}`);
  return res.json();
}

const ok = (status: number): Outcome => ({ status, code: null });
const err = (status: number, code: string): Outcome => ({ status, code });

let room: CreatedRoom;
let otherRoom: CreatedRoom;
let expiredRoom: CreatedRoom;
let job: CreatedJob;
let otherJob: CreatedJob;
let finishedJob: CreatedJob;
let deletedJob: CreatedJob;

beforeAll(async () => {
  room = await createRoom();
  otherRoom = await createRoom();
  expiredRoom = await createRoom({ idle_ttl_s: 1 });
  job = await createJobWith();
  otherJob = await createJobWith();
  finishedJob = await createJobWith();
  deletedJob = await createJobWith({ retention_s: 1 });
  for (const j of [finishedJob, deletedJob]) {
    expect((await rest('POST', `/api/v1/jobs/${j.job_id}/events`, j.publish_token, { type: 'completed' })).status).toBe(200);
  }
  await sleep(1200);
  // The alarms may already have fired on their own; either way both are gone after this.
  await runDurableObjectAlarm(E.TRANSPORT.get(E.TRANSPORT.idFromName(expiredRoom.code)));
  await runDurableObjectAlarm(jobStub(E, deletedJob.job_id));
  expect((await api(`/api/v1/rooms/${expiredRoom.code}`)).status).toBe(404);
  expect((await api(`/api/v1/jobs/${deletedJob.job_id}`)).status).toBe(404);
});

interface Case {
  caller: string;
  attempt: () => Promise<Outcome>;
  expected: Outcome;
}

/** Room control over REST: the room's control token and nothing else. */
function restControlCases(op: string, body: unknown): Case[] {
  const path = (code: string) => `/api/v1/rooms/${code}/transport/${op}`;
  return [
    { caller: 'no token', attempt: () => rest('POST', path(room.code), null, body), expected: err(401, 'unauthorized') },
    { caller: 'a wrong token', attempt: () => rest('POST', path(room.code), 'not-the-token', body), expected: err(401, 'unauthorized') },
    { caller: "another room's token", attempt: () => rest('POST', path(room.code), otherRoom.control_token, body), expected: err(401, 'unauthorized') },
    { caller: 'the admin token', attempt: () => rest('POST', path(room.code), ADMIN_TOKEN, body), expected: err(401, 'unauthorized') },
    { caller: "an expired room's own token", attempt: () => rest('POST', path(expiredRoom.code), expiredRoom.control_token, body), expected: err(404, 'not_found') },
    { caller: 'the right token', attempt: () => rest('POST', path(room.code), room.control_token, body), expected: ok(200) },
  ];
}

/** A socket role that needs the control token, claimed with hello: the answer to the hello. */
function helloCases(role: 'controller' | 'agent'): Case[] {
  const as = (code: string, token: string | null) => () => helloAttempt(code, role, token);
  return [
    { caller: 'no token', attempt: as(room.code, null), expected: err(101, 'unauthorized') },
    { caller: 'a wrong token', attempt: as(room.code, 'not-the-token'), expected: err(101, 'unauthorized') },
    { caller: "another room's token", attempt: as(room.code, otherRoom.control_token), expected: err(101, 'unauthorized') },
    { caller: 'the admin token', attempt: as(room.code, ADMIN_TOKEN), expected: err(101, 'unauthorized') },
    { caller: "an expired room's own token", attempt: as(expiredRoom.code, expiredRoom.control_token), expected: err(404, 'not_found') },
    { caller: 'the right token', attempt: as(room.code, room.control_token), expected: ok(101) },
  ];
}

async function helloAttempt(code: string, role: 'controller' | 'agent', token: string | null): Promise<Outcome> {
  const s = await socket(code);
  if (!(s instanceof TestSocket)) return s;
  try {
    await s.next('welcome');
    return await answer(s, { type: 'hello', role, ...(token === null ? {} : { token }) });
  } finally {
    s.close();
  }
}

/** Admin routes: the ADMIN_TOKEN secret and nothing else; `right` is what the admin gets. */
function adminCases(method: string, path: string, body: unknown, right: Outcome): Case[] {
  return [
    { caller: 'no token', attempt: () => rest(method, path, null, body), expected: err(401, 'unauthorized') },
    { caller: 'a wrong token', attempt: () => rest(method, path, 'not-the-token', body), expected: err(401, 'unauthorized') },
    { caller: "a room's control token", attempt: () => rest(method, path, room.control_token, body), expected: err(401, 'unauthorized') },
    { caller: "a job's publish token", attempt: () => rest(method, path, job.publish_token, body), expected: err(401, 'unauthorized') },
    { caller: 'the admin token', attempt: () => rest(method, path, ADMIN_TOKEN, body), expected: right },
  ];
}

const TABLE: Array<{ what: string; cases: () => Case[] }> = [
  { what: 'POST /rooms/:code/transport/play', cases: () => restControlCases('play', undefined) },
  { what: 'POST /rooms/:code/transport/pause', cases: () => restControlCases('pause', undefined) },
  { what: 'POST /rooms/:code/transport/resume', cases: () => restControlCases('resume', undefined) },
  { what: 'POST /rooms/:code/transport/seek', cases: () => restControlCases('seek', { seconds: 3 }) },
  { what: 'POST /rooms/:code/transport/tempo', cases: () => restControlCases('tempo', { bpm: 99 }) },
  { what: 'POST /rooms/:code/transport/stop', cases: () => restControlCases('stop', undefined) },
  { what: 'WS hello with role controller', cases: () => helloCases('controller') },
  { what: 'WS hello with role agent', cases: () => helloCases('agent') },
  {
    what: 'WS commands and agent reports without a hello',
    cases: () => [
      ...(['play', 'pause', 'resume', 'stop'] as const).map((type) => ({
        caller: `a viewer sending ${type}`,
        attempt: () => wsAttempt(room.code, null, { type }),
        expected: err(101, 'forbidden'),
      })),
      { caller: 'a viewer sending seek', attempt: () => wsAttempt(room.code, null, { type: 'seek', beats: 4 }), expected: err(101, 'forbidden') },
      { caller: 'a viewer sending tempo', attempt: () => wsAttempt(room.code, null, { type: 'tempo', bpm: 90 }), expected: err(101, 'forbidden') },
      { caller: 'a viewer sending clock', attempt: () => wsAttempt(room.code, null, { type: 'clock', sample: 1, server_ms: Date.now() }), expected: err(101, 'forbidden') },
      {
        caller: 'a viewer sending agent_state',
        attempt: () =>
          wsAttempt(room.code, null, { type: 'agent_state', cause: 'local', status: 'playing', sample: 0, server_ms: Date.now(), bpm: 120, beats_per_bar: 4 }),
        expected: err(101, 'forbidden'),
      },
      // ?role= only chooses where the socket is held; the role itself still needs hello and the token.
      { caller: 'a socket opened with ?role=controller', attempt: () => roleQueryAttempt('controller'), expected: err(101, 'forbidden') },
      { caller: 'a socket opened with ?role=agent', attempt: () => roleQueryAttempt('agent'), expected: err(101, 'forbidden') },
      {
        caller: 'a socket whose controller hello failed, sending play',
        attempt: () => wsAttempt(room.code, { role: 'controller', token: otherRoom.control_token }, { type: 'play' }, true),
        expected: err(101, 'forbidden'),
      },
      {
        caller: 'a controller sending clock',
        attempt: () => wsAttempt(room.code, { role: 'controller', token: room.control_token }, { type: 'clock', sample: 1, server_ms: Date.now() }),
        expected: err(101, 'forbidden'),
      },
    ],
  },
  { what: 'POST /jobs (create)', cases: () => adminCases('POST', '/api/v1/jobs', { kind: 'test' }, ok(201)) },
  {
    what: 'POST /jobs/:id/events',
    cases: () => {
      const progress = { type: 'progress', progress: 1, stage: 'probe' };
      const post = (j: CreatedJob, token: string | null) => () => rest('POST', `/api/v1/jobs/${j.job_id}/events`, token, progress);
      return [
        { caller: 'no token', attempt: post(job, null), expected: err(401, 'unauthorized') },
        { caller: 'a wrong token', attempt: post(job, 'not-the-token'), expected: err(401, 'unauthorized') },
        { caller: "another job's publish token", attempt: post(job, otherJob.publish_token), expected: err(401, 'unauthorized') },
        { caller: 'the admin token', attempt: post(job, ADMIN_TOKEN), expected: err(401, 'unauthorized') },
        { caller: "a room's control token", attempt: post(job, room.control_token), expected: err(401, 'unauthorized') },
        { caller: "a finished job's own token", attempt: post(finishedJob, finishedJob.publish_token), expected: err(409, 'invalid_state') },
        { caller: "a deleted job's own token", attempt: post(deletedJob, deletedJob.publish_token), expected: err(404, 'not_found') },
        { caller: 'the right token', attempt: post(job, job.publish_token), expected: ok(200) },
      ];
    },
  },
  // The admin's request carries an invalid body: a 400 proves the token was accepted without adding a track.
  { what: 'POST /catalog/tracks', cases: () => adminCases('POST', '/api/v1/catalog/tracks', {}, err(400, 'bad_request')) },
  { what: 'DELETE /catalog/tracks/:id', cases: () => adminCases('DELETE', '/api/v1/catalog/tracks/987654321', undefined, err(404, 'not_found')) },
  { what: 'GET /monitoring/live-streams', cases: () => adminCases('GET', '/api/v1/monitoring/live-streams', undefined, ok(200)) },
  { what: 'GET /monitoring/live-streams/:id', cases: () => adminCases('GET', '/api/v1/monitoring/live-streams/nobody-here', undefined, err(404, 'not_found')) },
  { what: 'DELETE /monitoring/live-streams/:id', cases: () => adminCases('DELETE', '/api/v1/monitoring/live-streams/nobody-here', undefined, err(404, 'not_found')) },
];

async function roleQueryAttempt(role: 'controller' | 'agent'): Promise<Outcome> {
  const s = await socket(room.code, `?role=${role}`);
  if (!(s instanceof TestSocket)) return s;
  try {
    await s.next('welcome');
    return await answer(s, role === 'agent' ? { type: 'clock', sample: 1, server_ms: Date.now() } : { type: 'stop' });
  } finally {
    s.close();
  }
}

describe('privileged routes and messages', () => {
  for (const row of TABLE) {
    it(`${row.what} lets in only the right token`, async () => {
      const got: Array<[string, Outcome]> = [];
      for (const c of row.cases()) got.push([c.caller, await c.attempt()]);
      expect(got).toEqual(row.cases().map((c) => [c.caller, c.expected]));
    });
  }

  it('leaves the room and the job as only the right callers left them', async () => {
    // Only the right-token rows changed anything: the room's last REST command
    // was stop, and the job holds exactly the one progress event posted with its token.
    const transport = await (await api(`/api/v1/rooms/${room.code}/transport`)).json<{ status: string }>();
    expect(transport.status).toBe('stopped');
    const other = await (await api(`/api/v1/rooms/${otherRoom.code}`)).json<{ anchor: { version: number } }>();
    expect(other.anchor.version).toBe(1);
    const status = await (await api(`/api/v1/jobs/${job.job_id}`)).json<{ seq: number }>();
    expect(status.seq).toBe(1);
    const otherStatus = await (await api(`/api/v1/jobs/${otherJob.job_id}`)).json<{ seq: number }>();
    expect(otherStatus.seq).toBe(0);
    const finished = await (await api(`/api/v1/jobs/${finishedJob.job_id}`)).json<{ seq: number; state: string }>();
    expect(finished).toMatchObject({ seq: 1, state: 'completed' });
  });
});
