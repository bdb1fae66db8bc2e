// npm run bench:jobs — job streams on the local runtime (workerd via wrangler dev).
//
// 1. Fan-out latency: N watchers on one job, E progress events published one
//    after another over HTTP; for every (watcher, event) the time from the
//    start of the publishing POST to the frame's arrival. Baseline in the same
//    run: one watcher, and the publisher's own POST round trip.
// 2. Reconnect storm: N watchers (the client library's JobWatcher) through a
//    proxy that cuts WebSocket connections at random, while E events and the
//    terminal event are published. Every watcher must end with every event
//    exactly once, in order, and the terminal event: lost and duplicated are
//    counted and must both be 0.
//
// Options: --watchers N (100), --events E (1000), --cut-mean-ms (3000),
// --delay-ms (2), --jitter-ms (3), --seed (1), --only latency|storm, --json.

import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import WS from 'ws';
import { startLocalServer, type LocalServer } from '../tests/support/local-server.ts';
import { startProxy, seededRandom } from './support/proxy.ts';
import { JobWatcher, streamUrlFor } from '../src/client/job-watcher.ts';
import type { CreatedJob, JobEvent } from '../src/protocol/index.ts';

const { values: args } = parseArgs({
  options: {
    watchers: { type: 'string', default: '100' },
    events: { type: 'string', default: '1000' },
    'cut-mean-ms': { type: 'string', default: '3000' },
    'delay-ms': { type: 'string', default: '2' },
    'jitter-ms': { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const WATCHERS = Number(args.watchers);
const EVENTS = Number(args.events);
const CUT_MEAN_MS = Number(args['cut-mean-ms']);
const DELAY_MS = Number(args['delay-ms']);
const JITTER_MS = Number(args['jitter-ms']);
const SEED = Number(args.seed);

const log = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summary(samples: number[]) {
  const s = Float64Array.from(samples).sort();
  const arr = Array.from(s);
  return { n: arr.length, p50: percentile(arr, 50), p90: percentile(arr, 90), p99: percentile(arr, 99), max: arr.at(-1) ?? NaN };
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function createJob(server: LocalServer, body: Record<string, unknown> = {}): Promise<CreatedJob> {
  const res = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'bench', ...body }),
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.json() as Promise<CreatedJob>;
}

let publishRetries = 0;
let publishCount = 0;

/**
 * Posts one event with an id, so a retry after a failed request (wrangler dev
 * reloads the worker when a source file changes) is answered, not logged twice.
 */
async function publish(server: LocalServer, job: CreatedJob, event: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify({ id: `bench-${++publishCount}`, ...event });
  for (let attempt = 0; ; attempt++) {
    let res: Response | null = null;
    try {
      res = await fetch(`${server.url}/api/v1/jobs/${job.job_id}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' },
        body,
      });
    } catch {
      // connection refused or reset during a reload: retried below
    }
    if (res?.ok) {
      await res.arrayBuffer();
      return;
    }
    const text = res ? await res.text() : 'no response';
    if (attempt >= 20 || (res && res.status < 500)) throw new Error(`publish failed: ${res?.status} ${text}`);
    publishRetries++;
    await sleep(100);
  }
}

// ---- 1. fan-out latency ----

interface LatencyResult {
  watchers: number;
  events: number;
  receipt: ReturnType<typeof summary>;
  post: ReturnType<typeof summary>;
  missing: number;
  wall_s: number;
}

async function latency(server: LocalServer, watchers: number, events: number): Promise<LatencyResult> {
  const job = await createJob(server);
  const sentAt = new Float64Array(events + 1);
  const receipts: number[] = [];
  let received = 0;
  const sockets: WS[] = [];
  await Promise.all(
    Array.from({ length: watchers }, () => {
      // The `ws` client: the lightest on this side, so the figures are the server's.
      const ws = new WS(job.stream_url, { perMessageDeflate: false });
      sockets.push(ws);
      ws.on('message', (data) => {
        const now = performance.now();
        const msg = JSON.parse(String(data)) as { type: string; seq: number };
        if (msg.type === 'heartbeat') {
          ws.send('{"type":"pong"}');
          return;
        }
        if (msg.type !== 'progress') return;
        receipts.push(now - sentAt[msg.seq]);
        received++;
      });
      return new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', () => reject(new Error('a watcher could not connect')));
      });
    }),
  );
  const posts: number[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= events; i++) {
    const start = performance.now();
    sentAt[i] = start;
    await publish(server, job, { type: 'progress', progress: (100 * i) / (events + 1), stage: 'bench', message: `event ${i}` });
    posts.push(performance.now() - start);
  }
  const expected = watchers * events;
  const deadline = Date.now() + 30_000;
  while (received < expected && Date.now() < deadline) await sleep(10);
  const wall_s = (performance.now() - t0) / 1000;
  await publish(server, job, { type: 'completed' });
  for (const ws of sockets) ws.terminate();
  return { watchers, events, receipt: summary(receipts), post: summary(posts), missing: expected - received, wall_s };
}

// ---- 2. reconnect storm ----

interface StormResult {
  watchers: number;
  events: number;
  cuts: number;
  connections: number;
  lost: number;
  duplicated: number;
  out_of_order: number;
  without_terminal: number;
  resent_and_dropped: number;
  polls: number;
  watchers_that_polled: number;
  publish_s: number;
  wall_s: number;
}

async function storm(server: LocalServer, watchers: number, events: number): Promise<StormResult> {
  const random = seededRandom(SEED);
  const job = await createJob(server, { heartbeat_ms: 2000 });
  const proxy = await startProxy({
    target: server.url,
    delayMs: DELAY_MS,
    jitterMs: JITTER_MS,
    random,
    cuts: { meanLifetimeMs: CUT_MEAN_MS, minLifetimeMs: 20, webSocketsOnly: true, establishedOnly: true },
  });
  const streamUrl = streamUrlFor(`${proxy.url}/api/v1/jobs/${job.job_id}`);
  const statusUrl = `${proxy.url}/api/v1/jobs/${job.job_id}`;
  const seen: number[][] = [];
  const ws: JobWatcher[] = [];
  for (let i = 0; i < watchers; i++) {
    const got: number[] = [];
    seen.push(got);
    const w = new JobWatcher({ statusUrl, streamUrl, backoff: { minDelayMs: 100, maxDelayMs: 2000 }, socketRetryMs: 2000, random });
    w.on('event', (e: JobEvent) => got.push(e.seq));
    ws.push(w.start());
  }
  const t0 = performance.now();
  const pace = Math.max(1, Math.round(5000 / events)); // spread over ~5 s, so cuts land throughout
  for (let i = 1; i <= events; i++) {
    await publish(server, job, { type: 'progress', progress: (100 * i) / (events + 1), stage: 'storm' });
    if (i % 10 === 0) await sleep(pace * 10);
  }
  await publish(server, job, { type: 'completed', summary: { events } });
  const publish_s = (performance.now() - t0) / 1000;
  const ended = await Promise.race([Promise.allSettled(ws.map((w) => w.done)), sleep(90_000).then(() => null)]);
  const wall_s = (performance.now() - t0) / 1000;
  for (const w of ws) w.stop();
  await proxy.close();
  if (!ended) log('storm: some watchers did not finish within 90 s');
  const total = events + 1;
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let withoutTerminal = 0;
  for (const got of seen) {
    const counts = new Map<number, number>();
    for (const s of got) counts.set(s, (counts.get(s) ?? 0) + 1);
    for (let s = 1; s <= total; s++) if (!counts.has(s)) lost++;
    for (const c of counts.values()) if (c > 1) duplicated += c - 1;
    for (let k = 1; k < got.length; k++) if (got[k] !== got[k - 1] + 1) outOfOrder++;
    if (got.at(-1) !== total) withoutTerminal++;
  }
  return {
    watchers,
    events,
    cuts: proxy.stats.cuts,
    connections: proxy.stats.connections,
    lost,
    duplicated,
    out_of_order: outOfOrder,
    without_terminal: withoutTerminal,
    resent_and_dropped: ws.reduce((n, w) => n + w.stats.duplicates, 0),
    polls: ws.reduce((n, w) => n + w.stats.polls, 0),
    watchers_that_polled: ws.filter((w) => w.stats.polls > 0).length,
    publish_s,
    wall_s,
  };
}

// ---- run ----

const runLatency = args.only === undefined || args.only === 'latency';
const runStorm = args.only === undefined || args.only === 'storm';
const server = await startLocalServer({ vars: { JOBS_PER_MIN: '100000', JOB_STREAMS_PER_MIN: '1000000' } });
try {
  log(`jobs bench: ${WATCHERS} watchers, ${EVENTS} events, local runtime at ${server.url}`);
  // The local runtime shares the machine: say how busy it was, since every figure depends on it.
  const loadAtStart = loadavg()[0];
  let base: LatencyResult | null = null;
  let fan: LatencyResult | null = null;
  let st: StormResult | null = null;
  if (runLatency) {
    await latency(server, 5, 50); // warm-up: isolates, objects, connections
    base = await latency(server, 1, Math.min(EVENTS, 300));
    log(`baseline, 1 watcher: receipt p50 ${fmt(base.receipt.p50)} p99 ${fmt(base.receipt.p99)}; POST round trip p50 ${fmt(base.post.p50)}`);
    fan = await latency(server, WATCHERS, EVENTS);
    log(`fan-out, ${WATCHERS} watchers: receipt p50 ${fmt(fan.receipt.p50)} p99 ${fmt(fan.receipt.p99)} max ${fmt(fan.receipt.max)}; missing ${fan.missing}`);
  }
  if (runStorm) {
    st = await storm(server, WATCHERS, EVENTS);
    log(`storm: ${st.cuts} cuts, ${st.connections} connections; lost ${st.lost}, duplicated ${st.duplicated}, out of order ${st.out_of_order}, without terminal ${st.without_terminal}`);
  }
  const p99_ok = fan ? fan.receipt.p99 <= 50 : null;
  const storm_ok = st ? st.lost === 0 && st.duplicated === 0 && st.out_of_order === 0 && st.without_terminal === 0 : null;
  if (args.json) {
    process.stdout.write(JSON.stringify({ baseline: base, fanout: fan, storm: st, target_p99_ms: 50, p99_ok, storm_ok, cpus: cpus().length, load: [loadAtStart, loadavg()[0]] }, null, 2) + '\n');
  } else {
    const lines: string[] = ['', `${cpus().length} CPUs; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`, ''];
    const row = (name: string, r: LatencyResult) =>
      `| ${name} | ${r.watchers} | ${r.events} | ${fmt(r.receipt.p50)} | ${fmt(r.receipt.p90)} | ${fmt(r.receipt.p99)} | ${fmt(r.receipt.max)} | ${fmt(r.post.p50)} | ${r.missing} |`;
    if (base && fan) {
      lines.push(
        '| publish → receipt | watchers | events | p50 | p90 | p99 | max | POST round trip p50 | missing |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        row('baseline', base),
        row('fan-out', fan),
        '',
        `p99 with ${WATCHERS} watchers: ${fmt(fan.receipt.p99)} (target ≤ 50 ms: ${p99_ok ? 'met' : 'NOT met'}); ${(fan.receipt.p99 / base.receipt.p99).toFixed(2)}× the one-watcher p99`,
        '',
      );
    }
    if (st) {
      lines.push(
        '| reconnect storm | watchers | events | cuts | connections | lost | duplicated | out of order | without terminal | re-sent, dropped by client | watchers that polled | publishing | all ended |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        `| cut mean ${CUT_MEAN_MS} ms, delay ${DELAY_MS}+${JITTER_MS} ms | ${st.watchers} | ${st.events} + terminal | ${st.cuts} | ${st.connections} | ${st.lost} | ${st.duplicated} | ${st.out_of_order} | ${st.without_terminal} | ${st.resent_and_dropped} | ${st.watchers_that_polled} | ${st.publish_s.toFixed(1)} s | ${st.wall_s.toFixed(1)} s |`,
        '',
      );
    }
    process.stdout.write(lines.join('\n'));
  }
  if (publishRetries > 0) log(`publish retries (worker reloads or resets): ${publishRetries}`);
  if (storm_ok === false) process.exitCode = 1;
} finally {
  await server.stop();
}
