// Tokens never appear in the server's output or in any answer: the real worker
// (wrangler dev, everything it prints at debug level) is fed wrong tokens, and
// bodies and frames that carry the real ones in every field we could think of;
// the agent and catalog CLIs run with good and bad tokens. Afterwards no token
// (nor any 12-character piece of one) may be found in what the server or the
// CLIs printed, and no answer may hold a token that its request did not
// itself carry in its path, body or frames (a token sent in a header is never
// echoed). Error messages do quote a client's own misplaced input back to it,
// e.g. an unknown key or message type: docs/reliability.md lists that.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ADMIN = `adm_${randomBytes(24).toString('base64url')}`;

let server: LocalServer;
/** Every response body and socket frame the test received, with what its request carried outside headers. */
const answers: Array<{ sent: string; text: string }> = [];
/** Every line the CLIs printed. */
const cliOutput: string[] = [];

beforeAll(async () => {
  server = await startLocalServer({ vars: { ADMIN_TOKEN: ADMIN }, logLevel: 'debug' });
}, 90_000);
afterAll(async () => {
  await server?.stop();
});

async function call(method: string, path: string, token: string | null, body?: string, type = 'application/json'): Promise<number> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = type;
  const res = await fetch(server.url + path, { method, headers, body });
  answers.push({ sent: path + (body ?? ''), text: await res.text() });
  return res.status;
}

/** Opens a socket, sends the frames one by one and keeps every answer until it goes quiet. */
async function converse(path: string, frames: string[]): Promise<void> {
  const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path);
  const sent = path + frames.join('');
  ws.on('message', (d) => answers.push({ sent, text: d.toString() }));
  await new Promise((res, rej) => {
    ws.once('open', res);
    ws.once('error', rej);
  });
  for (const f of frames) {
    ws.send(f);
    await new Promise((r) => setTimeout(r, 30));
  }
  await new Promise((r) => setTimeout(r, 300));
  ws.close();
}

function runCli(args: string[], env: Record<string, string>, stopAfterMs?: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [`${ROOT}agent/bin/roomtone.js`, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  if (stopAfterMs) setTimeout(() => child.kill('SIGINT'), stopAfterMs).unref();
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((r) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      cliOutput.push(out);
      r({ code, out });
    }),
  );
}

/** Every 12-character piece of a token: finding one means part of the secret got out. */
function pieces(token: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 12 <= token.length; i++) out.push(token.slice(i, i + 12));
  return out;
}

/** The tokens of which some piece is in `haystack`, leaving out those the request itself carried. */
function leaks(haystack: string, tokens: Record<string, string>, sent = ''): string[] {
  const found: string[] = [];
  for (const [name, t] of Object.entries(tokens)) if (!sent.includes(t) && pieces(t).some((p) => haystack.includes(p))) found.push(name);
  return found;
}

describe('secrets', () => {
  it('never appear in the server output, in error answers or in CLI output', async () => {
    const mk = async () => (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string; control_token: string };
    const a = await mk();
    const b = await mk();
    const jobRes = await fetch(`${server.url}/api/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"kind":"secret.test"}' });
    expect(jobRes.status).toBe(201);
    const job = (await jobRes.json()) as { job_id: string; publish_token: string };
    const tokens = { admin: ADMIN, roomA: a.control_token, roomB: b.control_token, job: job.publish_token };
    const T = Object.values(tokens);

    // Wrong tokens where a token belongs.
    const ctl = `/api/v1/rooms/${a.code}/transport`;
    expect(await call('POST', `${ctl}/play`, b.control_token)).toBe(401);
    expect(await call('POST', `${ctl}/play`, ADMIN)).toBe(401);
    expect(await call('POST', `/api/v1/jobs/${job.job_id}/events`, a.control_token, '{"type":"progress","progress":1,"stage":"x"}')).toBe(401);
    expect(await call('POST', '/api/v1/jobs', job.publish_token, '{}')).toBe(401);
    expect(await call('POST', '/api/v1/catalog/tracks', a.control_token, '{}')).toBe(401);
    expect(await call('DELETE', '/api/v1/catalog/tracks/1', job.publish_token)).toBe(401);
    expect(await call('GET', '/api/v1/monitoring/live-streams', b.control_token)).toBe(401);
    // Malformed authorization headers carrying a real token.
    for (const t of T) {
      const res = await fetch(`${server.url}${ctl}/stop`, { method: 'POST', headers: { authorization: `Basic ${t}` } });
      answers.push({ sent: '', text: await res.text() });
      expect(res.status).toBe(401);
    }

    // Bodies that carry real tokens in values, keys and as the whole body, with the right token and a wrong one.
    for (const t of T) {
      const bodies = [JSON.stringify({ seconds: t }), JSON.stringify({ [t]: 1 }), `{"seconds": ${t}}`, t, JSON.stringify({ bpm: t, beats_per_bar: t })];
      for (const body of bodies) {
        expect(await call('POST', `${ctl}/seek`, a.control_token, body)).toBeGreaterThanOrEqual(400);
        expect(await call('POST', `${ctl}/tempo`, b.control_token, body)).toBeGreaterThanOrEqual(400);
      }
      expect(await call('POST', `/api/v1/jobs/${job.job_id}/events`, job.publish_token, JSON.stringify({ type: 'progress', progress: t, stage: 's', [t]: t }))).toBe(400);
      expect(await call('POST', `/api/v1/jobs/${job.job_id}/events`, job.publish_token, JSON.stringify({ type: t }))).toBe(400);
      expect(await call('POST', '/api/v1/jobs', ADMIN, JSON.stringify({ kind: t, title: 5 }))).toBe(400);
      expect(await call('POST', '/api/v1/rooms', null, JSON.stringify({ bpm: t, [t]: true }))).toBe(400);
      expect(await call('POST', `/api/v1/catalog/tracks?title=x`, ADMIN, t, 'audio/wav')).toBe(400);
      expect(await call('POST', '/api/v1/catalog/tracks', ADMIN, JSON.stringify({ title: 'x', fingerprint_version: t, duration_s: t }))).toBe(400);
      expect(await call('GET', `/api/v1/catalog/tracks?after=${encodeURIComponent(t)}&limit=${encodeURIComponent(t)}`, null)).toBe(400);
      expect(await call('GET', `/api/v1/jobs/${job.job_id}?after=${encodeURIComponent(t)}`, null)).toBe(400);
    }

    // Socket frames: hellos with wrong tokens, and junk carrying the real ones.
    const frames = (t: string) => [
      JSON.stringify({ type: 'hello', role: 'controller', token: t }),
      JSON.stringify({ type: 'hello', role: 'agent', token: t, extra: t }),
      JSON.stringify({ type: 'ping', id: 1, t0: t }),
      JSON.stringify({ type: 'seek', seconds: t }),
      JSON.stringify({ type: t }),
      JSON.stringify({ [t]: t }),
      t,
    ];
    for (const t of [b.control_token, ADMIN, job.publish_token]) await converse(`/api/v1/rooms/${a.code}/ws`, frames(t));
    await converse(`/api/v1/rooms/${a.code}/ws?role=controller`, frames(a.control_token).slice(2));
    for (const t of T) {
      await converse(`/api/v1/jobs/${job.job_id}/stream`, [JSON.stringify({ type: 'resume', after: t }), JSON.stringify({ type: t }), t]);
      await converse(`/api/v1/analysis/secret-test`, [
        JSON.stringify({ type: 'hello', role: 'source', sample_rate: 8000, format: t }),
        JSON.stringify({ type: 'hello', role: t }),
        JSON.stringify({ type: t, id: t }),
        t,
      ]);
      await converse(`/api/v1/match/secret-test`, [JSON.stringify({ type: 'hello', format: t }), JSON.stringify({ type: t }), t]);
    }

    // The CLIs: a real agent session with the token in the environment, wrong tokens on the command line.
    const agent = await runCli(['agent', '--url', server.url, '--room', a.code, '--source', 'sim'], { ROOMTONE_TOKEN: a.control_token }, 4000);
    expect(agent.out).toMatch(/attached|agent/i);
    const wrong = await runCli(['agent', '--url', server.url, '--room', a.code, '--token', b.control_token], {});
    expect(wrong.code).not.toBe(0);
    const wrongAdmin = await runCli(['catalog', 'remove', '1', '--url', server.url, '--token', a.control_token], {});
    expect(wrongAdmin.code).not.toBe(0);
    const rightAdmin = await runCli(['catalog', 'remove', '987654', '--url', server.url], { ROOMTONE_ADMIN_TOKEN: ADMIN });
    expect(rightAdmin.out).toMatch(/no such track|not found/i);

    // Give the server a moment to flush what it logs.
    await new Promise((r) => setTimeout(r, 500));
    const log = server.log();
    expect(log.length).toBeGreaterThan(0);
    expect(answers.length).toBeGreaterThan(120);
    expect(leaks(log, tokens), 'server output').toEqual([]);
    expect(leaks(cliOutput.join('\n'), tokens), 'CLI output').toEqual([]);
    const leaking = answers.filter((x) => leaks(x.text, tokens, x.sent).length > 0);
    expect(leaking, 'answers').toEqual([]);
  }, 120_000);
});
