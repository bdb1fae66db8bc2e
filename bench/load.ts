// npm run bench:load — everything at once against one local runtime:
//
//   - 20 rooms, each with its agent (simulated device, in-process RoomAgent)
//     and 50 viewers (1,000 viewers); a controller seeks in every room every
//     10 s: latency from the REST call to each viewer's new anchor;
//   - 50 live analysis streams fed in real time (100 ms frames of a tone, a
//     different note each): lag of each result behind the audio it describes,
//     and whether it names the note;
//   - 20 live match streams fed in real time with excerpts of catalog tracks
//     (synthesised music, ingested first): time to the first match, and
//     whether it names the right track;
//   - 10 jobs, each with 100 watchers (JobWatcher), one event a second each:
//     latency from the event's server timestamp to each watcher, and every
//     watcher must end with every event exactly once.
//
// Errors (target 0): failed requests, error frames, client reconnects,
// unexpected closes, wrong or missing matches, lost or repeated job events.
// Memory: RSS of workerd (and of wrangler above it) and of this process, at
// the start of the load and at its end.
//
// Environment: BENCH_LOAD_SECONDS (default 300), BENCH_LOAD_SCALE (default 1;
// 0.1 runs a tenth of every client count, for a quick look).

import { mkdirSync, writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startLocalServer } from '../tests/support/local-server.ts';
import { RoomClient } from '../src/client/room-client.ts';
import { JobWatcher } from '../src/client/job-watcher.ts';
import { RoomAgent } from '../agent/room-agent.ts';
import { DeviceTransport } from '../agent/transport-driver.ts';
import { SimDeviceClock } from '../agent/sources/sim.ts';
import { AnalysisStreamClient, analysisUrl, withSourceRole } from '../agent/analysis-stream-client.ts';
import { encodeWav } from '../wasm/wav.ts';
import { synthMusic } from '../wasm/fingerprint/test-signals.ts';
import { midiName, midiToHz } from '../wasm/dsp/notes.ts';
import { summarize, table, type Summary } from './support/stats.ts';
import { treeMemory } from './support/load-procs.ts';
import type { JobEvent, MatchServerMessage } from '../src/protocol/index.ts';

const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 300);
const SCALE = Number(process.env.BENCH_LOAD_SCALE ?? 1);
const n = (x: number) => Math.max(1, Math.round(x * SCALE));
const ROOMS = n(20);
const VIEWERS_PER_ROOM = 50;
const ANALYSIS = n(50);
const MATCH = n(20);
const JOBS = n(10);
const WATCHERS_PER_JOB = 100;
const TRACKS = 5;
const MATCH_RATE = 22_050;
const ANALYSIS_RATE = 16_000;
const FRAME_S = 0.1;
const ADMIN = { authorization: 'Bearer test-admin-token' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** No request may hang the benchmark: an answer slower than this counts as a failure. */
const timeout = () => AbortSignal.timeout(30_000);

const errors: Record<string, number> = {};
/** Set once the benchmark closes its own clients: closes from then on are expected. */
let closingDown = false;
const error = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);
const latency: Record<string, number[]> = { 'room control (REST)': [], 'anchor to viewers': [], 'analysis result lag': [], 'job event to watchers': [], 'time to first match': [] };

const server = await startLocalServer({ vars: { JOB_STREAMS_PER_MIN: '100000', JOBS_PER_MIN: '100000' } });
// Never leave the runtime behind: whatever fails, stop it and show the end of its output.
const bail = async (e: unknown) => {
  console.error('\nthe benchmark failed:', e instanceof Error ? e.message : e);
  console.error(`the end of the server's output:\n${server.log().slice(-3000)}`);
  await server.stop();
  process.exit(1);
};
process.on('uncaughtException', bail);
process.on('unhandledRejection', bail);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void bail(new Error(`stopped by ${sig}`)));
const memory = () => ({ ...treeMemory(server.process.pid!), bench_mib: process.memoryUsage().rss / 2 ** 20 });
const memIdle = memory();
console.log(`local server at ${server.url}; ${SECONDS} s of load; scale ${SCALE}`);

// ---- set-up: catalog, rooms and agents, viewers, jobs and watchers, streams ----

const tracks: Array<{ id: number; audio: Float32Array }> = [];
for (let i = 0; i < TRACKS; i++) {
  const audio = synthMusic(900 + i, 40, MATCH_RATE, 3);
  const res = await fetch(`${server.url}/api/v1/catalog/tracks?title=load-${i}&wait=1`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: encodeWav(audio, MATCH_RATE) });
  if (res.status !== 201) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
  tracks.push({ id: ((await res.json()) as { track_id: number }).track_id, audio });
}

interface RoomSetup {
  code: string;
  token: string;
  agent: RoomAgent;
  viewers: RoomClient[];
}
const rooms: RoomSetup[] = [];
const seekSentAt = new Map<string, number>();
for (let r = 0; r < ROOMS; r++) {
  const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string; control_token: string };
  const driver = new DeviceTransport(new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: (r % 5) * 40 - 80, jitterMs: 1, seed: r + 1 }));
  const agent = new RoomAgent({ url: server.url, code: room.code, token: room.control_token, driver });
  await agent.start();
  agent.client.on('state', (s) => s === 'reconnecting' && error('agent reconnects'));
  const viewers: RoomClient[] = [];
  for (let v = 0; v < VIEWERS_PER_ROOM; v += 25) {
    const batch = Array.from({ length: Math.min(25, VIEWERS_PER_ROOM - v) }, () => new RoomClient({ url: server.url, code: room.code }));
    await Promise.all(batch.map((c) => c.connect()));
    viewers.push(...batch);
  }
  for (const c of viewers) {
    c.on('state', (s) => s === 'reconnecting' && error('viewer reconnects'));
    c.on('anchor', ({ cause }) => {
      const sent = seekSentAt.get(room.code);
      if (cause === 'seek' && sent !== undefined) latency['anchor to viewers'].push(performance.now() - sent);
    });
  }
  await fetch(`${server.url}/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}` } });
  rooms.push({ code: room.code, token: room.control_token, agent, viewers });
  process.stdout.write(`\rrooms ${rooms.length}/${ROOMS}, viewers ${rooms.length * VIEWERS_PER_ROOM}`);
}
console.log();

interface JobSetup {
  id: string;
  token: string;
  /** Events published so far, and how many of them the server accepted. */
  seq: number;
  accepted: number;
  /** The previous publish: a publisher posts in order (the server refuses progress that goes backwards). */
  last: Promise<void>;
  watchers: JobWatcher[];
  delivered: number[][];
}
const jobs: JobSetup[] = [];
for (let j = 0; j < JOBS; j++) {
  const res = await fetch(`${server.url}/api/v1/jobs`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'bench.load', heartbeat_ms: 10_000 }) });
  const job = (await res.json()) as { job_id: string; publish_token: string; status_url: string };
  const delivered: number[][] = [];
  const watchers: JobWatcher[] = [];
  for (let w = 0; w < WATCHERS_PER_JOB; w++) {
    const got: number[] = [];
    delivered.push(got);
    const watcher = new JobWatcher({ statusUrl: job.status_url, heartbeatMs: 10_000 });
    watcher.on('event', (e: JobEvent) => {
      got.push(e.seq);
      latency['job event to watchers'].push(Date.now() - e.timestamp);
    });
    watcher.on('warning', () => error('job watcher warnings'));
    watchers.push(watcher.start());
    if (w % 25 === 24) await sleep(50);
  }
  jobs.push({ id: job.job_id, token: job.publish_token, seq: 0, accepted: 0, last: Promise.resolve(), watchers, delivered });
}
console.log(`jobs ${jobs.length}, watchers ${jobs.length * WATCHERS_PER_JOB}`);

interface AnalysisSetup {
  client: AnalysisStreamClient;
  tone: Float32Array;
  note: string;
  startMs: number;
  results: number;
  named: number;
}
const analyses: AnalysisSetup[] = [];
for (let a = 0; a < ANALYSIS; a++) {
  const midi = 55 + (a % 24);
  const frame = Math.round(ANALYSIS_RATE * FRAME_S);
  const tone = new Float32Array(frame);
  for (let i = 0; i < frame; i++) tone[i] = 0.4 * Math.sin((2 * Math.PI * midiToHz(midi) * i) / ANALYSIS_RATE);
  const setup: AnalysisSetup = { client: null as never, tone, note: midiName(midi), startMs: 0, results: 0, named: 0 };
  // As the agent and the page connect a source: `?role=source`, a plain socket.
  setup.client = await AnalysisStreamClient.connect(withSourceRole(analysisUrl(server.url, { id: `load-${a}-${Date.now()}` })), {
    role: 'source',
    sampleRate: ANALYSIS_RATE,
    onResult: (r) => {
      setup.results++;
      if (r.pitch?.note === setup.note) setup.named++;
      // How far the result trails the audio it describes (its window centre), in wall time.
      latency['analysis result lag'].push(performance.now() - (setup.startMs + r.t * 1000));
    },
  });
  setup.client.ws.on('close', () => closingDown || error('analysis unexpected closes'));
  analyses.push(setup);
}
console.log(`analysis streams ${analyses.length}`);

interface MatchSetup {
  ws: WebSocket;
  track: number;
  offset: number;
  sent: number;
  startMs: number;
  matched: number | null;
  ready: boolean;
}
const matches: MatchSetup[] = [];
for (let m = 0; m < MATCH; m++) {
  const track = m % TRACKS;
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/match/load-${m}-${Date.now()}`);
  const setup: MatchSetup = { ws, track, offset: Math.round((3 + (m % 7) * 4) * MATCH_RATE), sent: 0, startMs: 0, matched: null, ready: false };
  ws.on('message', (d) => {
    const msg = JSON.parse(d.toString()) as MatchServerMessage;
    if (msg.type === 'ready') setup.ready = true;
    if (msg.type === 'error') error(`match error frames (${msg.code})`);
    if (msg.type === 'match' && setup.matched === null) {
      setup.matched = msg.data.track_id;
      latency['time to first match'].push(performance.now() - setup.startMs);
      if (msg.data.track_id !== tracks[track].id) error('wrong matches');
    }
  });
  ws.on('close', () => closingDown || error('match unexpected closes'));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'hello', sample_rate: MATCH_RATE, format: 'f32' }));
  matches.push(setup);
}
while (!matches.every((m) => m.ready)) await sleep(20);
console.log(`match streams ${matches.length}`);

// ---- the load ----

await sleep(2000);
const memStart = memory();
const memSeries: Array<ReturnType<typeof memory> & { s: number }> = [];
const mem = (m: typeof memStart) => `workerd ${m.workerd_mib.toFixed(0)} MiB, wrangler ${m.wrangler_mib.toFixed(0)} MiB, bench ${m.bench_mib.toFixed(0)} MiB`;
console.log(`memory idle:  ${mem(memIdle)}\nmemory start: ${mem(memStart)}`);
const start = performance.now();
for (const a of analyses) a.startMs = start;
for (const m of matches) m.startMs = start;
let tick = 0;
const publishes: Array<Promise<void>> = [];
while (performance.now() - start < SECONDS * 1000) {
  const due = start + tick * FRAME_S * 1000;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  // Audio, at real time: one frame per stream per tick (a late tick sends what is due, as a real source would).
  for (const a of analyses) {
    if (a.client.ws.readyState === WebSocket.OPEN) a.client.sendAudio(a.tone);
  }
  const matchFrame = Math.round(MATCH_RATE * FRAME_S);
  for (const m of matches) {
    if (m.ws.readyState !== WebSocket.OPEN) continue;
    const audio = tracks[m.track].audio;
    let from = m.offset + m.sent;
    if (from + matchFrame > audio.length) {
      // Past the end of the track: loop back to the excerpt's start.
      m.sent = 0;
      from = m.offset;
    }
    m.ws.send(audio.slice(from, from + matchFrame).buffer);
    m.sent += matchFrame;
  }
  // Every second: one event per job; every 10 s, a seek in every room (spread over the 10 s).
  if (tick % 10 === 0) {
    for (const j of jobs) {
      const seq = ++j.seq;
      const publish = () =>
        fetch(`${server.url}/api/v1/jobs/${j.id}/events`, {
          method: 'POST',
          signal: timeout(),
          headers: { authorization: `Bearer ${j.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'progress', progress: Math.min(99, seq / SECONDS * 100), stage: 'load', id: `e${seq}` }),
        }).then(
          (r) => void (r.ok ? j.accepted++ : error(`job publish HTTP ${r.status}`)),
          () => void error('job publish failures'),
        );
      j.last = j.last.then(publish);
      publishes.push(j.last);
    }
  }
  const slot = tick % 100;
  const room = tick >= 10 && slot % 5 === 0 ? rooms[slot / 5] : undefined;
  if (room) {
    const t = performance.now();
    seekSentAt.set(room.code, t);
    void fetch(`${server.url}/api/v1/rooms/${room.code}/transport/seek`, { method: 'POST', signal: timeout(), headers: { authorization: `Bearer ${room.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ seconds: 10 + (tick % 97) }) }).then(
      (r) => {
        latency['room control (REST)'].push(performance.now() - t);
        if (!r.ok) error(`room control HTTP ${r.status}`);
      },
      () => error('room control failures'),
    );
  }
  if (tick % 50 === 0) {
    const el = (performance.now() - start) / 1000;
    const m = memory();
    memSeries.push({ s: el, ...m });
    if (m.workerd_processes > memIdle.workerd_processes && !errors['runtime replaced (a second workerd)']) {
      error('runtime replaced (a second workerd)');
      console.log(`\nwrangler started another workerd at ${el.toFixed(0)} s; the end of its output:\n${server.log().slice(-2000)}`);
    }
    process.stdout.write(`\r${el.toFixed(0)} s / ${SECONDS} s, errors ${Object.values(errors).reduce((a, b) => a + b, 0)}   `);
  }
  tick++;
}
const elapsed = (performance.now() - start) / 1000;
console.log();
await Promise.all(publishes);
const memEnd = memory();

// ---- the end: every job completes, every watcher must have every event once ----

const health = await fetch(`${server.url}/api/v1/health`, { signal: timeout() }).then((r) => r.ok, () => false);
if (!health) {
  error('server not answering after the load');
  console.log(`the server stopped answering; the end of its output:\n${server.log().slice(-3000)}`);
}
for (const j of jobs) {
  // Retried by event id: a POST whose answer was lost is answered again, not logged twice.
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${server.url}/api/v1/jobs/${j.id}/events`, { method: 'POST', signal: timeout(), headers: { authorization: `Bearer ${j.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'completed', id: 'done' }) });
      if (res.ok) j.accepted++;
      else error(`job publish HTTP ${res.status}`);
      break;
    } catch {
      error('job publish failures');
      if (attempt >= 5) break;
      await sleep(500);
    }
  }
  j.seq++;
}
await Promise.race([Promise.allSettled(jobs.flatMap((j) => j.watchers.map((w) => w.done))), sleep(60_000)]);
let lost = 0;
let repeated = 0;
let notDone = 0;
for (const j of jobs) {
  for (const d of j.delivered) {
    // Only what the server accepted can be delivered; a refused publish is already an error above.
    lost += j.accepted - new Set(d).size;
    repeated += d.length - new Set(d).size;
  }
  notDone += j.watchers.filter((w) => w.mode !== 'done').length;
}
if (lost) errors['job events lost'] = lost;
if (repeated) errors['job events repeated'] = repeated;
if (notDone) errors['job watchers not done'] = notDone;
const unmatched = matches.filter((m) => m.matched === null).length;
if (unmatched) errors['match streams without a match'] = unmatched;
for (const a of analyses) for (const e of a.client.errors) error(`analysis error frames (${e.reason})`);
const results = analyses.reduce((s, a) => s + a.results, 0);
const named = analyses.reduce((s, a) => s + a.named, 0);
const expectedResults = analyses.length * elapsed / 0.05;

// Close quietly: closes from here on are ours.
const closing = { ...errors };
closingDown = true;
for (const m of matches) m.ws.close();
await Promise.all(analyses.map((a) => a.client.close()));
for (const j of jobs) for (const w of j.watchers) w.stop();
for (const r of rooms) {
  for (const v of r.viewers) v.close();
  await r.agent.stop();
}
await server.stop();

const lat: Record<string, Summary> = {};
for (const [k, v] of Object.entries(latency)) lat[k] = summarize(v);
const totalErrors = Object.values(closing).reduce((a, b) => a + b, 0);
console.log(`\n# Load: ${rooms.length * VIEWERS_PER_ROOM} viewers in ${rooms.length} rooms with agents, ${analyses.length} analysis and ${matches.length} match streams in real time, ${jobs.length} jobs × ${WATCHERS_PER_JOB} watchers; ${elapsed.toFixed(0)} s`);
console.log(table(['kind', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], Object.entries(lat).map(([k, s]) => [k, String(s.n), s.p50, s.p90, s.p99, s.max])));
console.log(`analysis results: ${results} (${((100 * results) / expectedResults).toFixed(1)} % of one per 50 ms of audio), ${((100 * named) / Math.max(1, results)).toFixed(1)} % naming the note played`);
console.log(`match streams: ${matches.length - unmatched} of ${matches.length} matched; job events: ${jobs[0]?.seq ?? 0} per job, ${lost} lost, ${repeated} repeated`);
console.log(`errors: ${totalErrors}${totalErrors ? ' ' + JSON.stringify(closing) : ''}`);
console.log(`memory idle:  ${mem(memIdle)}\nmemory start: ${mem(memStart)}\nmemory end:   ${mem(memEnd)}`);
console.log(`workerd MiB every 5 s: ${memSeries.map((m) => m.workerd_mib.toFixed(0)).join(' ')}`);

mkdirSync(new URL('./out', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./out/load.json', import.meta.url),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      seconds: elapsed,
      scale: SCALE,
      clients: { rooms: rooms.length, viewers: rooms.length * VIEWERS_PER_ROOM, analysis: analyses.length, match: matches.length, jobs: jobs.length, watchers: jobs.length * WATCHERS_PER_JOB },
      latency_ms: lat,
      analysis: { results, expected: expectedResults, named_share: named / Math.max(1, results) },
      match: { matched: matches.length - unmatched, of: matches.length },
      jobs: { events_per_job: jobs[0]?.seq ?? 0, lost, repeated, not_done: notDone },
      errors: closing,
      memory: { idle: memIdle, start: memStart, end: memEnd, series: memSeries },
    },
    null,
    2,
  ),
);
console.log('figures written to bench/out/load.json');
process.exit(0);
