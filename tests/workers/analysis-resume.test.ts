// A source that comes back after its link died silently: the object may still
// hold the old socket as the source, and only the bearer of that socket's
// resume token may replace it.
import { describe, expect, it } from 'vitest';
import { env, evictDurableObject } from 'cloudflare:test';
import { TestSocket, api, control, createRoom, sleep } from './helpers.ts';
import type { AnalysisResult, AnalysisServerMessage } from '../../src/protocol/analysis-messages.ts';
import { harmonicTone, seededNoise } from '../../wasm/dsp/dsp.shared-cases.ts';

type Sock = TestSocket<AnalysisServerMessage>;

let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

async function open(path: string): Promise<Sock> {
  const res = await api(path, { headers: { upgrade: 'websocket' } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const s = new TestSocket<AnalysisServerMessage>(res.webSocket);
  await s.next('welcome');
  return s;
}

async function watcher(path: string): Promise<Sock> {
  const w = await open(path);
  w.send({ type: 'hello', role: 'watcher' });
  await w.next('ready');
  return w;
}

async function hello(path: string, sampleRate: number, extra: Record<string, unknown> = {}): Promise<Sock> {
  const s = await open(path);
  s.send({ type: 'hello', role: 'source', sample_rate: sampleRate, format: 'f32', ...extra });
  return s;
}

function stream(s: Sock, x: Float32Array, frame: number) {
  for (let i = 0; i < x.length; i += frame) s.send(x.slice(i, Math.min(x.length, i + frame)).buffer);
}

const results = (s: Sock) => s.messages.filter((m): m is AnalysisResult => m.type === 'analysis');

async function until(pred: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function samplesIn(s: Sock): Promise<number> {
  s.send({ type: 'stats' });
  return (await s.next('stats')).samples_in;
}

async function refusedAs(s: Sock, reason: string) {
  const e = await s.next('error');
  expect(e.reason).toBe(reason);
  s.close();
}

describe('a source resuming after a silent drop', () => {
  it('replaces its stale plain socket with the resume token; others are still refused, and seq and stream time go on', async () => {
    const sr = 22_050;
    const path = `/api/v1/analysis/${unique('resume')}`;
    const w = await watcher(path);
    const a = await hello(`${path}?role=source`, sr);
    const readyA = await a.next('ready');
    expect(readyA.resume_token).toMatch(/^[0-9a-f]{32}$/);
    expect(readyA.start_t).toBe(0);
    stream(a, harmonicTone(sr, 440, 0.5, 3, 0.4), 441);
    expect(await samplesIn(a)).toBe(sr / 2);
    const before = results(a).at(-1)!;
    await until(() => results(w).some((r) => r.seq === before.seq), 'the watcher up to date');

    // A reconnects while the object still holds its first socket (a dead link looks like this from here).
    await refusedAs(await hello(`${path}?role=source`, sr), 'source_taken');
    await refusedAs(await hello(`${path}?role=source`, sr, { resume_token: '0123456789abcdef0123456789abcdef' }), 'source_taken');
    await refusedAs(await hello(`${path}?role=source`, sr, { resume_token: 'not-a-token' }), 'bad_message');
    const b = await hello(`${path}?role=source`, sr, { resume_token: readyA.resume_token });
    const readyB = await b.next('ready');
    expect(readyB.role).toBe('source');
    expect(readyB.resume_token).toMatch(/^[0-9a-f]{32}$/);
    expect(readyB.resume_token).not.toBe(readyA.resume_token);
    expect(readyB.seq).toBeGreaterThanOrEqual(before.seq);
    // B's first sample sits where A's last ended: results name stream time, which runs on across sources.
    expect(readyB.start_t).toBe(0.5);
    expect(await a.closedWith()).toEqual({ code: 4002, reason: 'replaced by the same source reconnecting' });
    // Watchers see the source come back, never leave after it came back.
    const statuses = () => w.messages.filter((m) => m.type === 'status').map((m) => (m as { state: string }).state);
    await until(() => statuses().at(-1) === 'source_joined', 'source_joined');

    stream(b, harmonicTone(sr, 440, 0.5, 3, 0.4), 441);
    expect(await samplesIn(b)).toBe(sr);
    const after = results(b);
    await until(() => results(w).some((r) => r.seq === after.at(-1)!.seq), 'the watcher up to date again');
    const seen = results(w);
    for (let i = 1; i < seen.length; i++) expect(seen[i].seq).toBe(seen[i - 1].seq + 1);
    expect(after[0].t).toBeGreaterThan(before.t);
    expect(after[0].t).toBeGreaterThanOrEqual(readyB.start_t!);
    expect(after.some((r) => r.pitch?.note === 'A4')).toBe(true);

    // The first socket's token died with it.
    await refusedAs(await hello(`${path}?role=source`, sr, { resume_token: readyA.resume_token }), 'source_taken');
    b.send({ type: 'stats' });
    expect(await b.next('stats')).toMatchObject({ source_connected: true, watchers: 1 });
    b.close();
    await until(() => statuses().at(-1) === 'source_left', 'source_left');
    // With no source held, anyone may become the source, token or not.
    const c = await hello(path, sr, { resume_token: readyB.resume_token! });
    expect(await c.next('ready')).toMatchObject({ role: 'source', start_t: 1 });
    c.close();
    w.close();
  });

  it('keeps the token hash of a hibernatable source across an eviction', async () => {
    const sr = 22_050;
    const id = unique('resume-evict');
    const path = `/api/v1/analysis/${id}`;
    const a = await hello(path, sr);
    const readyA = await a.next('ready');
    stream(a, harmonicTone(sr, 440, 0.3, 3, 0.4), 441);
    await until(() => results(a).some((r) => r.t >= 0.2), 'results');
    const lastSeq = results(a).at(-1)!.seq;
    await evictDurableObject(env.ANALYSIS.get(env.ANALYSIS.idFromName(`stream:${id}`)), { webSockets: 'hibernate' });
    await refusedAs(await hello(`${path}?role=source`, sr), 'source_taken');
    const b = await hello(`${path}?role=source`, sr, { resume_token: readyA.resume_token });
    expect((await b.next('ready')).role).toBe('source');
    expect((await a.closedWith()).code).toBe(4002);
    stream(b, harmonicTone(sr, 440, 0.3, 3, 0.4), 441);
    await until(() => results(b).length > 3, 'results after the takeover');
    expect(results(b)[0].seq).toBeGreaterThan(lastSeq);
    b.close();
  });

  it('places beats from the t0_server_ms of the new connection, whatever audio the drop lost', async () => {
    const room = await createRoom({ bpm: 120 });
    expect((await control(room.code, room.control_token, 'play', {})).status).toBe(200);
    const summary = await (await api(`/api/v1/rooms/${room.code}`)).json<{ anchor: { server_ms: number } }>();
    const playStart = summary.anchor.server_ms;
    const sr = 22_050;
    const path = `/api/v1/rooms/${room.code}/analysis/mic`;
    const a = await hello(`${path}?role=source`, sr, { t0_server_ms: playStart });
    const readyA = await a.next('ready');
    await sleep(50);
    stream(a, seededNoise(sr, 8, 0.0005), 2205);
    expect(await samplesIn(a)).toBe(sr);
    // One second of audio was lost in the drop: the new connection's first sample is 2 s after play started.
    const b = await hello(`${path}?role=source`, sr, { t0_server_ms: playStart + 2000, resume_token: readyA.resume_token });
    await b.next('ready');
    const x = seededNoise(sr, 9, 0.0005);
    const at = Math.round(0.5 * sr);
    for (let i = 0; i < 200; i++) x[at + i] += 0.6 * Math.exp(-i / 40) * (i % 2 ? 1 : -1);
    await sleep(50);
    stream(b, x, 2205);
    await until(() => results(b).some((r) => r.t >= 1.9), 'the click');
    const beats = results(b).flatMap((r) => r.onset_beats ?? []);
    expect(beats.length).toBe(1);
    // 2.5 s after play at 120 BPM; stream time alone (1.5 s) would say beat 7.
    expect(Math.abs(beats[0]! - 5)).toBeLessThan(0.05);
    b.close();
  });
});
