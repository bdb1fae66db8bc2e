// node bench/memory.ts SCENARIO — what makes workerd's memory grow under load:
// one kind of client at a time against a fresh local runtime, with the RSS of
// each workerd process (wrangler dev runs two: a proxy and the worker) sampled
// every 2 s, and the growth rate over the load.
//
//   idle       nothing connected
//   viewers    BENCH_MEM_N viewers (default 500) in 10 rooms, pinging as clients do
//   watchers   5 jobs × BENCH_MEM_N/5 watchers, one event a second per job
//   analysis   BENCH_MEM_N/20 analysis streams (default 25) fed in real time
//   match      BENCH_MEM_N/50 match streams (default 10) fed in real time
//   churn      BENCH_MEM_N viewers, and BENCH_MEM_N/5 more sockets closed and reopened every second
//   bare-analysis  the analysis scenario's traffic against bench/support/bare-sink,
//              a minimal worker: the runtime's own share of any growth
//              (BENCH_MEM_ACCEPT=plain: its sockets accepted without hibernation)
//   sockets    BENCH_MEM_N plain sockets on 10 rooms, nothing sent: the cost of a connection
//   bare-sockets  the same against bench/support/bare-room (a minimal room object)
//   bare-churn    BENCH_MEM_N/5 sockets closed and reopened every second on bare-room
//
// BENCH_MEM_SECONDS (default 30) of load; figures in bench/out/memory-SCENARIO.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startLocalServer } from '../tests/support/local-server.ts';
import { RoomClient } from '../src/client/room-client.ts';
import { JobWatcher } from '../src/client/job-watcher.ts';
import { AnalysisStreamClient, analysisUrl } from '../agent/analysis-stream-client.ts';
import { encodeWav } from '../wasm/wav.ts';
import { synthMusic } from '../wasm/fingerprint/test-signals.ts';
import { descendants } from './support/proc-cpu.ts';

const SCENARIO = process.argv[2] ?? 'idle';
const N = Number(process.env.BENCH_MEM_N ?? 500);
const SECONDS = Number(process.env.BENCH_MEM_SECONDS ?? 30);
const ADMIN = { authorization: 'Bearer test-admin-token' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server =
  SCENARIO === 'bare-analysis'
    ? await startLocalServer({ project: new URL('./support/bare-sink', import.meta.url).pathname })
    : SCENARIO === 'bare-sockets' || SCENARIO === 'bare-churn'
    ? await startLocalServer({ project: new URL('./support/bare-room', import.meta.url).pathname })
    : await startLocalServer({ vars: { JOB_STREAMS_PER_MIN: '1000000', JOBS_PER_MIN: '100000' } });
const stop = async (code: number) => {
  await server.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(130));
process.on('unhandledRejection', (e) => {
  console.error(e);
  void stop(1);
});

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
const pids = descendants(server.process.pid!, 'workerd');

// The worker isolate's JS heap, through wrangler's inspector (Chrome DevTools
// protocol): tells memory the program holds apart from garbage not yet
// collected and from memory outside the JS heap.
const inspectorPort = server.process.spawnargs[server.process.spawnargs.indexOf('--inspector-port') + 1];
const [target] = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
const cdp = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => cdp.once('open', r));
let cdpId = 0;
const cdpWaiting = new Map<number, (v: unknown) => void>();
cdp.on('message', (d) => {
  const m = JSON.parse(d.toString()) as { id?: number; result?: unknown };
  if (m.id !== undefined) cdpWaiting.get(m.id)?.(m.result);
});
function cdpCall<T>(method: string): Promise<T> {
  const id = ++cdpId;
  cdp.send(JSON.stringify({ id, method }));
  return Promise.race([new Promise<T>((r) => cdpWaiting.set(id, r as (v: unknown) => void)), sleep(10_000).then(() => ({}) as T)]);
}
const heapMiB = async () => ((await cdpCall<{ usedSize?: number }>('Runtime.getHeapUsage')).usedSize ?? NaN) / 2 ** 20;
const sample = () => pids.map(rssMiB);
const series: Array<{ label: string; s: number; rss: number[]; js_heap_mib: number }> = [];
const t0 = performance.now();
const record = async (label: string) => {
  const rss = sample();
  const heap = await heapMiB();
  series.push({ label, s: (performance.now() - t0) / 1000, rss, js_heap_mib: heap });
  console.log(`${label.padEnd(10)} ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s  ${rss.map((r, i) => `workerd[${pids[i]}] ${r.toFixed(0)} MiB`).join('  ')}  worker JS heap ${heap.toFixed(0)} MiB`);
};
await record('idle');

let load: () => void = () => {};
const closers: Array<() => void> = [];

if (SCENARIO === 'viewers' || SCENARIO === 'churn' || SCENARIO === 'bare-churn') {
  const rooms: string[] = [];
  for (let r = 0; r < 10; r++) rooms.push(((await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string }).code);
  const viewers: RoomClient[] = [];
  for (let v = 0; v < (SCENARIO === 'bare-churn' ? 0 : N); v += 25) {
    const batch = Array.from({ length: Math.min(25, N - v) }, (_, i) => new RoomClient({ url: server.url, code: rooms[(v + i) % rooms.length] }));
    await Promise.all(batch.map((c) => c.connect()));
    viewers.push(...batch);
  }
  closers.push(() => viewers.forEach((c) => c.close()));
  if (SCENARIO !== 'viewers') {
    // A raw socket per viewer slot, closed and reopened each second: what reconnecting clients do to the objects.
    const raw: WebSocket[] = [];
    // One still connecting after a second is dropped too: a reconnecting client does not wait either.
    const end = (ws: WebSocket) => (ws.readyState === WebSocket.OPEN ? ws.close() : ws.terminate());
    load = () => {
      for (const ws of raw.splice(0)) end(ws);
      for (let i = 0; i < N / 5; i++) {
        const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/rooms/${rooms[i % rooms.length]}/ws`);
        ws.on('error', () => {});
        raw.push(ws);
      }
    };
    closers.push(() => raw.forEach(end));
  }
} else if (SCENARIO === 'watchers') {
  const jobs: Array<{ id: string; token: string; seq: number }> = [];
  for (let j = 0; j < 5; j++) {
    const res = await fetch(`${server.url}/api/v1/jobs`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'bench.memory', heartbeat_ms: 10_000 }) });
    const job = (await res.json()) as { job_id: string; publish_token: string; status_url: string };
    for (let w = 0; w < N / 5; w++) {
      const watcher = new JobWatcher({ statusUrl: job.status_url, heartbeatMs: 10_000 }).start();
      closers.push(() => watcher.stop());
      if (w % 25 === 24) await sleep(50);
    }
    jobs.push({ id: job.job_id, token: job.publish_token, seq: 0 });
  }
  load = () => {
    for (const j of jobs) {
      const seq = ++j.seq;
      void fetch(`${server.url}/api/v1/jobs/${j.id}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${j.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'progress', progress: Math.min(99, seq / 10), stage: 'memory', id: `e${seq}` }),
      }).catch(() => {});
    }
  };
} else if (SCENARIO === 'analysis') {
  const rate = 16_000;
  const tone = new Float32Array(rate);
  for (let i = 0; i < tone.length; i++) tone[i] = 0.4 * Math.sin((2 * Math.PI * 440 * i) / rate);
  const streams: AnalysisStreamClient[] = [];
  for (let a = 0; a < Math.max(1, N / 20); a++) {
    streams.push(await AnalysisStreamClient.connect(analysisUrl(server.url, { id: `mem-${a}-${Date.now()}` }), { role: 'source', sampleRate: rate, onResult: () => {} }));
  }
  closers.push(() => streams.forEach((s) => s.ws.close()));
  // One second of audio per stream per second, in 100 ms frames.
  load = () => {
    for (let k = 0; k < 10; k++) setTimeout(() => streams.forEach((s) => s.ws.readyState === WebSocket.OPEN && s.sendAudio(tone.subarray(0, rate / 10))), k * 100);
  };
} else if (SCENARIO === 'match') {
  const rate = 22_050;
  const audio = synthMusic(901, 40, rate, 3);
  const res = await fetch(`${server.url}/api/v1/catalog/tracks?title=mem&wait=1`, { method: 'POST', headers: { ...ADMIN, 'content-type': 'audio/wav' }, body: encodeWav(audio, rate) });
  if (res.status !== 201) throw new Error(`ingest failed: ${res.status}`);
  const streams: Array<{ ws: WebSocket; sent: number }> = [];
  for (let m = 0; m < Math.max(1, N / 50); m++) {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/match/mem-${m}-${Date.now()}`);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'hello', sample_rate: rate, format: 'f32' }));
    streams.push({ ws, sent: 0 });
  }
  closers.push(() => streams.forEach((s) => s.ws.close()));
  load = () => {
    for (let k = 0; k < 10; k++) {
      setTimeout(() => {
        for (const s of streams) {
          if (s.ws.readyState !== WebSocket.OPEN) continue;
          const frame = rate / 10;
          if (s.sent + frame > audio.length) s.sent = 0;
          s.ws.send(audio.slice(s.sent, s.sent + frame).buffer);
          s.sent += frame;
        }
      }, k * 100);
    }
  };
} else if (SCENARIO === 'sockets' || SCENARIO === 'bare-sockets') {
  const sockets: WebSocket[] = [];
  for (let r = 0; r < 10; r++) {
    const { code } = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string };
    for (let i = 0; i < N / 10; i++) {
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/rooms/${code}/ws`);
      await new Promise((res) => ws.once('open', res));
      sockets.push(ws);
    }
  }
  closers.push(() => sockets.forEach((ws) => ws.close()));
} else if (SCENARIO === 'bare-analysis') {
  const rate = 16_000;
  const frame = new Float32Array(rate / 10);
  for (let i = 0; i < frame.length; i++) frame[i] = 0.4 * Math.sin((2 * Math.PI * 440 * i) / rate);
  const sockets: WebSocket[] = [];
  for (let a = 0; a < Math.max(1, N / 20); a++) {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/sink/mem-${a}-${Date.now()}${process.env.BENCH_MEM_ACCEPT === 'plain' ? '?accept=plain' : ''}`);
    await new Promise((r) => ws.once('open', r));
    sockets.push(ws);
  }
  closers.push(() => sockets.forEach((ws) => ws.close()));
  load = () => {
    for (let k = 0; k < 10; k++) setTimeout(() => sockets.forEach((ws) => ws.readyState === WebSocket.OPEN && ws.send(frame)), k * 100);
  };
} else if (SCENARIO !== 'idle') {
  console.error(`unknown scenario ${SCENARIO}`);
  await stop(2);
}

await sleep(2000);
await record('connected');
const loadStart = series.length - 1;
for (let s = 1; s <= SECONDS; s++) {
  load();
  await sleep(1000);
  if (s % 2 === 0) await record('load');
}
const loadEnd = series.length - 1;
await cdpCall('HeapProfiler.collectGarbage');
await record('full GC');
for (const c of closers) c();
await sleep(5000);
await record('closed');
await sleep(10_000);
await record('closed+15s');
cdp.close();

const slope = pids.map((_, i) => (series[loadEnd].rss[i] - series[loadStart].rss[i]) / (series[loadEnd].s - series[loadStart].s));
console.log(`growth during load: ${slope.map((x, i) => `workerd[${pids[i]}] ${x.toFixed(2)} MiB/s`).join('  ')}`);
mkdirSync('bench/out', { recursive: true });
writeFileSync(`bench/out/memory-${SCENARIO}.json`, JSON.stringify({ scenario: SCENARIO, n: N, seconds: SECONDS, pids, series, growth_mib_per_s: slope }, null, 2));
await stop(0);
