import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { until } from '../support/until.ts';
import { RoomClient } from '../../src/client/room-client.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import { RoomAgent } from '../../agent/room-agent.ts';
import { DeviceTransport } from '../../agent/transport-driver.ts';
import { SimDeviceClock } from '../../agent/sources/sim.ts';
import { encodeWav } from '../../wasm/wav.ts';
import { AnalysisStreamClient, analysisUrl, type AnalysisResult } from '../../agent/analysis-stream-client.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer();
});
afterAll(async () => {
  await server?.stop();
});

async function newRoom(body: Record<string, unknown> = {}): Promise<{ code: string; control_token: string }> {
  const res = await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return (await res.json()) as { code: string; control_token: string };
}

function post(code: string, token: string, op: string, body?: unknown) {
  return fetch(`${server.url}/api/v1/rooms/${code}/transport/${op}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

interface AgentProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function spawnAgent(args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [`${ROOT}agent/bin/roomtone.js`, 'agent', '--url', server.url, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

describe('the agent drives the room from its audio clock', () => {
  it('viewers track a +200 ppm device, jitter included, within a millisecond after the first corrections', async () => {
    const room = await newRoom();
    const sim = new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 200, jitterMs: 2, seed: 11 });
    const driver = new DeviceTransport(sim);
    const agent = new RoomAgent({ url: server.url, code: room.code, token: room.control_token, driver });
    await agent.start();
    const viewer = new RoomClient({ url: server.url, code: room.code });
    await viewer.connect();
    let corrections = 0;
    viewer.on('anchor', ({ cause }) => cause === 'correction' && corrections++);
    await post(room.code, room.control_token, 'play');
    await until(() => viewer.position()?.playing === true, 3000, 'playing');
    const errors: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 12_000) {
      await sleep(50);
      const local = localNow();
      const seen = viewer.position(local)!.sample_pos;
      const truth = driver.timelineFromDevice(sim.truth(local));
      if (Date.now() - t0 > 6000) errors.push(((seen - truth) / 48_000) * 1000);
    }
    await agent.stop();
    viewer.close();
    errors.sort((a, b) => Math.abs(a) - Math.abs(b));
    const p95 = Math.abs(errors[Math.floor(errors.length * 0.95)]);
    // Uncorrected, 200 ppm would put viewers 1.2–2.4 ms off over this window.
    expect(p95).toBeLessThan(1);
    expect(corrections).toBeGreaterThanOrEqual(1);
    expect(corrections).toBeLessThanOrEqual(12);
    // The drift was learned: the room corrects on position (0.5 ms), not on
    // rate, so the published rate is a fit of a few seconds of jittered
    // reports and may stay ~90 ppm off while the playhead keeps within the
    // tolerance (109–194 ppm in six runs here); 0 ppm is what an
    // unlearned drift would show.
    expect((viewer.anchor!.rate / 48_000 - 1) * 1e6).toBeGreaterThan(50);
    expect((viewer.anchor!.rate / 48_000 - 1) * 1e6).toBeLessThan(350);
  });

  it('attaches as a real process, forwards control, survives being killed and resumes without a jump', async () => {
    const room = await newRoom();
    const viewer = new RoomClient({ url: server.url, code: room.code });
    await viewer.connect();
    const first = spawnAgent(['--room', room.code, '--source', 'sim', '--drift-ppm', '-150'], { ROOMTONE_TOKEN: room.control_token });
    await until(() => viewer.agent.connected, 15_000, 'the agent to attach');
    expect(first.output()).not.toContain(room.control_token);

    const res = await post(room.code, room.control_token, 'play');
    expect(res.status).toBe(200);
    await until(() => viewer.position()?.playing === true, 3000, 'playing');
    await until(() => first.output().includes('control: play'), 3000, 'the agent to log the command');
    await sleep(1000);
    const seekRes = await post(room.code, room.control_token, 'seek', { seconds: 30 });
    expect(seekRes.status).toBe(200);
    await sleep(300);
    expect(viewer.position()!.seconds).toBeGreaterThan(30);

    first.child.kill('SIGKILL');
    await first.exited;
    await until(() => !viewer.agent.connected, 5000, 'the room to notice the agent is gone');
    // Viewers keep extrapolating while the agent is away.
    const during = viewer.position()!;
    expect(during.playing).toBe(true);
    const versionBefore = viewer.anchor!.version;

    const second = spawnAgent(['--room', room.code, '--source', 'sim'], { ROOMTONE_TOKEN: room.control_token });
    await until(() => viewer.agent.connected, 15_000, 'the agent to come back');
    await sleep(500);
    const after = viewer.position()!;
    expect(after.playing).toBe(true);
    // The restarted agent took the room's line: no new version from the attach itself.
    expect(viewer.anchor!.version - versionBefore).toBeLessThanOrEqual(1);
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
    viewer.close();
  });

  it('exits with one clear line for a wrong token, an unknown room, a bad URL and a bad source', async () => {
    const room = await newRoom();
    const wrong = spawnAgent(['--room', room.code, '--token', 'nope']);
    expect(await wrong.exited).toBe(1);
    expect(wrong.output()).toMatch(/refused the token/);
    const unknown = spawnAgent(['--room', 'ZZZZZZ', '--token', 'x']);
    expect(await unknown.exited).toBe(1);
    expect(unknown.output()).toMatch(/no room ZZZZZZ/);
    const bad = spawn(process.execPath, [`${ROOT}agent/bin/roomtone.js`, 'agent', '--url', 'ftp://x', '--room', room.code, '--token', 'x'], { cwd: ROOT });
    let out = '';
    bad.stderr.on('data', (d) => (out += d));
    expect(await new Promise((r) => bad.once('exit', r))).toBe(2);
    expect(out).toMatch(/must start with http/);
    const src = spawnAgent(['--room', room.code, '--source', 'tape'], { ROOMTONE_TOKEN: room.control_token });
    expect(await src.exited).toBe(2);
    expect(src.output()).toMatch(/unknown source tape/);
    const dev = spawnAgent(['--room', room.code, '--source', 'device:Scarlett'], { ROOMTONE_TOKEN: room.control_token });
    expect(await dev.exited).toBe(1);
    expect(dev.output()).toMatch(/npm install audify/);
  });

  it('plays a WAV file as the clock and streams its audio to the room analysis stream with --analyze', async () => {
    const room = await newRoom();
    const sr = 44_100;
    const tone = new Float32Array(sr * 4);
    for (let i = 0; i < tone.length; i++) tone[i] = 0.5 * Math.sin((2 * Math.PI * 220 * i) / sr);
    const file = join(mkdtempSync(join(tmpdir(), 'roomtone-agent-')), 'a3.wav');
    writeFileSync(file, encodeWav(tone, sr));
    const results: AnalysisResult[] = [];
    const watcher = await AnalysisStreamClient.connect(analysisUrl(server.url, { room: room.code, name: 'agent' }), { role: 'watcher', onResult: (r) => results.push(r) });
    const agent = spawnAgent(['--room', room.code, '--source', `wav:${file}`, '--analyze'], { ROOMTONE_TOKEN: room.control_token });
    await until(() => results.filter((r) => r.pitch).length >= 20, 15_000, 'analysis results');
    agent.child.kill('SIGINT');
    await agent.exited;
    await watcher.close();
    const notes = results.filter((r) => r.pitch).map((r) => r.pitch!.note);
    expect(notes.filter((n) => n === 'A3').length / notes.length).toBeGreaterThan(0.9);
  });

  it('refuses --analyze for the sim source, which has no audio', async () => {
    const room = await newRoom();
    const agent = spawnAgent(['--room', room.code, '--source', 'sim', '--analyze'], { ROOMTONE_TOKEN: room.control_token });
    expect(await agent.exited).toBe(2);
    expect(agent.output()).toMatch(/--analyze needs a source with audio/);
  });

  it('stops when its room expires', async () => {
    // Long enough for the agent process to start and attach on a loaded machine.
    const room = await newRoom({ idle_ttl_s: 6 });
    const agent = spawnAgent(['--room', room.code, '--source', 'sim'], { ROOMTONE_TOKEN: room.control_token });
    const code = await Promise.race([agent.exited, sleep(25_000).then(() => 'timeout')]);
    expect(code, agent.output()).toBe(0);
    expect(agent.output()).toMatch(/room expired/);
  });
});
