// npm run bench:transport — the shared clock, measured on the local runtime.
//
// 1. Fan-out: one room, 1 viewer (baseline) then 1,000 viewers; a control
//    command from a controller socket → each viewer's receipt, p50/p99; then
//    the same against a bare object that only broadcasts (the runtime's floor).
// 2. Sync: 20 clients, each behind its own delaying proxy (one-way delay
//    20–80 ms, jitter ±15 ms), sampled at the same instants: playhead
//    disagreement across clients and error against the true playhead, ours
//    (anchor + clock sync) beside a naive client that shows the last pushed
//    30 Hz time_seconds, in the same run.
// 3. Asymmetric delay: one client with 70 ms up and 10 ms down, against the
//    theoretical bound (up − down) / 2 of any round-trip clock sync.
// 4. Idle traffic: messages per viewer per second while playing unchanged.
//
// Server time and local time are the same clock here (one machine), so the
// true playhead at an instant is the room's anchor evaluated at that instant.

import WebSocket from 'ws';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { startLocalServer, type LocalServer } from '../tests/support/local-server.ts';
import { cpuSeconds, descendants } from './support/proc-cpu.ts';
import { startProxy, seededRandom, type Proxy } from './support/proxy.ts';
import { RoomClient } from '../src/client/room-client.ts';
import { localNow } from '../src/client/clock-sync.ts';
import { positionAt, type Anchor } from '../src/protocol/index.ts';
import { fmt, summarize, table, type Summary } from './support/stats.ts';

const VIEWERS = Number(process.env.BENCH_VIEWERS ?? 1000);
const COMMANDS = Number(process.env.BENCH_COMMANDS ?? 30);
const SYNC_CLIENTS = 20;
const SYNC_SECONDS = Number(process.env.BENCH_SYNC_SECONDS ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = await startLocalServer();
const wsBase = server.url.replace('http', 'ws');
const results: Record<string, unknown> = { date: new Date().toISOString(), viewers: VIEWERS };

async function createRoom(base = server.url): Promise<{ code: string; control_token: string }> {
  const res = await fetch(`${base}/api/v1/rooms`, { method: 'POST' });
  return (await res.json()) as { code: string; control_token: string };
}

function openSocket(url: string, onMessage?: (data: string, at: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let welcomed = false;
    ws.on('message', (data) => {
      const at = performance.now();
      const text = data.toString();
      if (!welcomed && text.startsWith('{"type":"welcome"')) {
        welcomed = true;
        resolve(ws);
        return;
      }
      onMessage?.(text, at);
    });
    ws.once('error', reject);
  });
}

async function controller(code: string, token: string, base = wsBase): Promise<{ ws: WebSocket; command: (msg: Record<string, unknown>) => Promise<number> }> {
  // ?role=controller: a crowded room would otherwise place this socket on a relay.
  const ws = await openSocket(`${base}/api/v1/rooms/${code}/ws?role=controller`);
  const acks = new Map<string, () => void>();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === 'ack' && acks.has(m.id)) acks.get(m.id)!();
  });
  let n = 0;
  const send = (msg: Record<string, unknown>) =>
    new Promise<number>((resolve) => {
      const id = `b${++n}`;
      const sent = performance.now();
      acks.set(id, () => resolve(sent));
      ws.send(JSON.stringify({ ...msg, id }));
    });
  await send({ type: 'hello', role: 'controller', token });
  return { ws, command: send };
}

// ---- 1. fan-out ----

async function fanOut(viewers: number, target: LocalServer = server): Promise<{ latencies: number[]; connectS: number; cpuMsPerCommand: number; workerCpuMsPerCommand: number }> {
  const wsBase = target.url.replace('http', 'ws');
  const room = await createRoom(target.url);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const onMessage = (text: string, at: number) => {
    // Only the version is needed: read it without parsing the whole frame on the hot path.
    const m = /"version":(\d+)/.exec(text);
    if (!m || !text.startsWith('{"type":"anchor"')) return;
    const sent = sentAt.get(Number(m[1]));
    if (sent !== undefined) latencies.push(at - sent);
  };
  const t0 = performance.now();
  const sockets: WebSocket[] = [];
  for (let i = 0; i < viewers; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, viewers - i) }, () => openSocket(`${wsBase}/api/v1/rooms/${room.code}/ws`, onMessage)));
    sockets.push(...batch);
  }
  const connectS = (performance.now() - t0) / 1000;
  const ctl = await controller(room.code, room.control_token, wsBase);
  await sleep(300);
  const runtime = descendants(target.process.pid!, 'workerd');
  // wrangler dev runs two: its proxy (listening on the server's port) and the worker.
  const proxyPid = runtime.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`entry=127.0.0.1:${target.port}`));
  const workerPids = runtime.filter((pid) => pid !== proxyPid);
  const cpu0 = cpuSeconds(runtime);
  const worker0 = cpuSeconds(workerPids);
  for (let i = 0; i < COMMANDS; i++) {
    const version = i + 2;
    const sent = performance.now();
    sentAt.set(version, sent);
    await ctl.command(i % 2 === 0 ? { type: 'seek', seconds: i } : { type: 'seek', beats: i * 4 });
    await sleep(150);
  }
  await sleep(500);
  const cpuMsPerCommand = ((cpuSeconds(runtime) - cpu0) * 1000) / COMMANDS;
  const workerCpuMsPerCommand = ((cpuSeconds(workerPids) - worker0) * 1000) / COMMANDS;
  for (const s of sockets) s.terminate();
  ctl.ws.terminate();
  return { latencies, connectS, cpuMsPerCommand, workerCpuMsPerCommand };
}

console.log(`\n# Fan-out: control command → each viewer's receipt`);
const base = await fanOut(1);
const big = await fanOut(VIEWERS);
// The runtime's own floor, in the same run: a Durable Object that does nothing
// but send each change to its hibernatable sockets (bench/support/bare-room).
await sleep(3000);
const bareServer = await startLocalServer({ project: new URL('./support/bare-room', import.meta.url).pathname });
const bare = await fanOut(VIEWERS, bareServer);
await bareServer.stop();
const baseS = summarize(base.latencies);
const bigS = summarize(big.latencies);
const bareS = summarize(bare.latencies);
console.log(
  table(
    ['', 'viewers', 'receipts', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'workerd CPU ms / command', 'of which the worker process', 'connect s'],
    [
      ['roomtone', '1', String(baseS.n), baseS.p50, baseS.p90, baseS.p99, baseS.max, base.cpuMsPerCommand, base.workerCpuMsPerCommand, base.connectS],
      ['roomtone', String(VIEWERS), String(bigS.n), bigS.p50, bigS.p90, bigS.p99, bigS.max, big.cpuMsPerCommand, big.workerCpuMsPerCommand, big.connectS],
      ['bare broadcast object (floor)', String(VIEWERS), String(bareS.n), bareS.p50, bareS.p90, bareS.p99, bareS.max, bare.cpuMsPerCommand, bare.workerCpuMsPerCommand, bare.connectS],
    ],
  ),
);
console.log(`p99 ratio ${VIEWERS} viewers / 1 viewer: ${fmt(bigS.p99 / baseS.p99)}×; roomtone / bare floor: p50 ${fmt(bigS.p50 / bareS.p50)}×, p99 ${fmt(bigS.p99 / bareS.p99)}×, CPU ${fmt(big.cpuMsPerCommand / bare.cpuMsPerCommand)}×`);
console.log(`expected receipts ${VIEWERS * COMMANDS}, got ${bigS.n} (bare: ${bareS.n})`);
results.fanout = { baseline: baseS, full: bigS, bare_floor: bareS, cpu_ms_per_command: { one: base.cpuMsPerCommand, full: big.cpuMsPerCommand, bare: bare.cpuMsPerCommand, worker_process: { one: base.workerCpuMsPerCommand, full: big.workerCpuMsPerCommand, bare: bare.workerCpuMsPerCommand } }, expected_receipts: VIEWERS * COMMANDS };

// ---- 2. sync behind a delaying proxy, ours vs naive ----

console.log(`\n# Sync: ${SYNC_CLIENTS} clients, one-way delay 20–80 ms, jitter ±15 ms, sampled at the same instants for ${SYNC_SECONDS} s after a warm-up`);
const room = await createRoom();
const ctl = await controller(room.code, room.control_token);
await ctl.command({ type: 'play' });
const rand = seededRandom(42);
const proxies: Proxy[] = [];
const ours: RoomClient[] = [];
const naive: Array<{ shown: number | null; messages: number }> = [];
const naiveSockets: WebSocket[] = [];
for (let i = 0; i < SYNC_CLIENTS; i++) {
  const delay = 20 + (60 * i) / (SYNC_CLIENTS - 1);
  // Uniform jitter in [−15, +15) around the client's delay, order kept.
  const proxy = await startProxy({ target: server.url, delayMs: delay - Number(process.env.BENCH_JITTER_MS ?? 15), jitterMs: 2 * Number(process.env.BENCH_JITTER_MS ?? 15), random: rand });
  proxies.push(proxy);
  ours.push(new RoomClient({ url: proxy.url, code: room.code }));
  const n = { shown: null as number | null, messages: 0 };
  naive.push(n);
  naiveSockets.push(
    await openSocket(`${proxy.url.replace('http', 'ws')}/api/v1/rooms/${room.code}/ws?ticks=30`, (text) => {
      n.messages++;
      const m = /"time_seconds":([0-9.e+-]+)/.exec(text);
      if (m) n.shown = Number(m[1]);
    }),
  );
}
let pushed = 0;
let pongs = 0;
for (const c of ours) c.on('message', (m) => (m.type === 'pong' ? pongs++ : m.type !== 'welcome' && pushed++));
await Promise.all(ours.map((c) => c.connect()));
// Clients keep sampling the clock once a second; measure after a warm-up, as
// a room looks a little while after people joined.
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 20);
await sleep(WARMUP_S * 1000);
let truthAnchor: Anchor = ours[0].anchor!;
for (const c of ours) c.on('anchor', ({ anchor }) => anchor.version > truthAnchor.version && (truthAnchor = anchor));

const spreadOurs: number[] = [];
const spreadNaive: number[] = [];
const errOurs: number[] = [];
const errNaive: number[] = [];
const syncStart = performance.now();
pushed = 0;
pongs = 0;
const naiveBefore = naive.reduce((s, n) => s + n.messages, 0);
while (performance.now() - syncStart < SYNC_SECONDS * 1000) {
  await sleep(20);
  const local = localNow();
  const truth = positionAt(truthAnchor, local).seconds;
  const o = ours.map((c) => c.position(local)!.seconds);
  const nv = naive.map((n) => n.shown).filter((x): x is number => x !== null);
  spreadOurs.push((Math.max(...o) - Math.min(...o)) * 1000);
  spreadNaive.push((Math.max(...nv) - Math.min(...nv)) * 1000);
  for (const x of o) errOurs.push(Math.abs(x - truth) * 1000);
  for (const x of nv) errNaive.push(Math.abs(x - truth) * 1000);
}
const idleOursPerClientS = pushed / SYNC_CLIENTS / SYNC_SECONDS;
const syncPerClientS = pongs / SYNC_CLIENTS / SYNC_SECONDS;
const naivePerClientS = (naive.reduce((s, n) => s + n.messages, 0) - naiveBefore) / SYNC_CLIENTS / SYNC_SECONDS;
const so = summarize(spreadOurs);
const sn = summarize(spreadNaive);
const eo = summarize(errOurs);
const en = summarize(errNaive);
const row = (name: string, s: Summary) => [name, s.p50, s.p90, s.p99, s.max];
console.log(table(['disagreement across clients', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], [row('roomtone (anchor + sync)', so), row('naive 30 Hz time_seconds', sn)]));
console.log(table(['error vs true playhead', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], [row('roomtone (anchor + sync)', eo), row('naive 30 Hz time_seconds', en)]));
console.log(`p99 disagreement: naive / roomtone = ${fmt(sn.p99 / so.p99, 1)}×`);
const offsets = ours.map((c) => c.sync.offsetMs);
if (process.env.BENCH_DEBUG) {
  const local = localNow();
  const truth = positionAt(truthAnchor, local).seconds;
  ours.forEach((c, i) => { const sm = (c.sync as any).samples as Array<{ upMs: number; downMs: number; rttMs: number }>; const ups = sm.map((x) => x.upMs).sort((a, b) => a - b); const dns = sm.map((x) => x.downMs).sort((a, b) => a - b); console.log(i, 'up', ups.slice(0, 5).map((x) => x.toFixed(2)).join(','), 'down', dns.slice(0, 5).map((x) => x.toFixed(2)).join(','), 'rtt min', Math.min(...sm.map((x) => x.rttMs)).toFixed(2)); });
  ours.forEach((c, i) => console.log(i, 'err', fmt((c.position(local)!.seconds - truth) * 1000), 'offset', fmt(c.sync.offsetMs), 'v', c.anchor!.version, 'server_ms', c.anchor!.server_ms, 'n', c.sync.sampleCount));
}
console.log(`clock offsets (true offset 0): ${offsets.map((x) => fmt(x, 2)).join(' ')} ms`);
results.sync = { disagreement: { ours: so, naive: sn, ratio_p99: sn.p99 / so.p99 }, error: { ours: eo, naive: en }, offsets_ms: offsets };

// ---- 3. asymmetric delay ----

console.log(`\n# Asymmetric path: 70 ms up, 10 ms down (bound: (70 − 10) / 2 = 30 ms)`);
const asym = await startProxy({ target: server.url, delayMs: { up: 70, down: 10 } });
const sym = await startProxy({ target: server.url, delayMs: { up: 40, down: 40 } });
const ca = new RoomClient({ url: asym.url, code: room.code });
const cs = new RoomClient({ url: sym.url, code: room.code });
await Promise.all([ca.connect(), cs.connect()]);
const local = localNow();
const truth = positionAt(truthAnchor, local).seconds;
const asymErr = (ca.position(local)!.seconds - truth) * 1000;
const symErr = (cs.position(local)!.seconds - truth) * 1000;
console.log(
  table(
    ['path', 'offset estimate ms', 'playhead error ms', 'theoretical bound ms'],
    [
      ['70 up / 10 down', ca.sync.offsetMs, asymErr, 30],
      ['40 up / 40 down', cs.sync.offsetMs, symErr, 0],
    ],
  ),
);
results.asymmetric = { asym_error_ms: asymErr, asym_offset_ms: ca.sync.offsetMs, bound_ms: 30, sym_error_ms: symErr };
ca.close();
cs.close();
await asym.close();
await sym.close();

// ---- 4. idle traffic ----

console.log(`\n# Idle traffic while playing with no changes (${SYNC_SECONDS} s)`);
console.log(
  table(
    ['client', 'pushed messages / viewer / s', 'note'],
    [
      ['roomtone viewer', idleOursPerClientS, 'pushed by the room'],
      ['roomtone viewer, clock sync', syncPerClientS, 'answers to its own pings (client-initiated, configurable)'],
      ['naive 30 Hz tick stream', naivePerClientS, 'what a plain clock server pushes'],
    ],
  ),
);
results.idle = { ours_pushed_per_viewer_s: idleOursPerClientS, ours_sync_pongs_per_viewer_s: syncPerClientS, naive_per_viewer_s: naivePerClientS };

for (const c of ours) c.close();
for (const s of naiveSockets) s.terminate();
ctl.ws.terminate();
for (const p of proxies) await p.close();
await server.stop();
mkdirSync(new URL('./out', import.meta.url), { recursive: true });
writeFileSync(new URL('./out/transport.json', import.meta.url), JSON.stringify(results, null, 2));
console.log('\nfigures written to bench/out/transport.json');
process.exit(0);
