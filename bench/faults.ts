// npm run bench:faults — what clients end with when the network fails.
//
// Part 1, the agent's network drops: the agent (simulated device, +150 ppm)
// reaches the room through a proxy; a viewer watches directly. The link then
// fails for 1 s, 10 s and 60 s in two ways: a dead link (bytes vanish, new
// connections are refused, and the old one is reset only when the link comes
// back) and a refused link (the connection is reset at once and every
// reconnection is refused until the link comes back). Meanwhile a controller
// sends a seek. We compare the viewer's playhead with the device's true
// position (a simulated device knows it) before, during and after, and time
// the recovery.
//
// Part 2, chaos for viewers and job watchers: 20 viewers and 20 job watchers
// behind a proxy that delays (20 ms ± 20 ms), cuts established connections at
// random (mean lifetime 4 s) and stalls every connection for 2 s about every
// 10 s, while a controller seeks every 4 s and a publisher posts 10 job events
// a second. Each client's end state is compared with the truth: events lost
// or delivered twice, the final anchor version, the playhead error (outside
// the 2.5 s after each seek, when a stalled viewer cannot know of it yet).
//
// Reading part 1: with a dead link the room still believes in the agent, so
// the seek waits for it and fails (503); with a refused link the room saw the
// agent go, runs its own transport and takes the seek (200, the viewer jumps
// away from the device), and when the agent comes back its device state wins
// again. "err during" is against the device, so it shows that jump.
//
// Environment: BENCH_DROPS (seconds, default "1,10,60"), BENCH_CHAOS_S
// (default 60), BENCH_WARMUP_S (default 8).

import { mkdirSync, writeFileSync } from 'node:fs';
import { startLocalServer } from '../tests/support/local-server.ts';
import { startProxy, seededRandom } from './support/proxy.ts';
import { RoomClient } from '../src/client/room-client.ts';
import { localNow } from '../src/client/clock-sync.ts';
import { JobWatcher } from '../src/client/job-watcher.ts';
import { RoomAgent } from '../agent/room-agent.ts';
import { DeviceTransport } from '../agent/transport-driver.ts';
import { SimDeviceClock } from '../agent/sources/sim.ts';
import { summarize, table } from './support/stats.ts';
import type { JobEvent } from '../src/protocol/index.ts';

const DROPS = (process.env.BENCH_DROPS ?? '1,10,60').split(',').map(Number).filter((x) => x > 0);
const CHAOS_S = Number(process.env.BENCH_CHAOS_S ?? 60);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 8);
const RATE = 48_000;
const ADMIN = { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = await startLocalServer();
const results: Record<string, unknown> = { date: new Date().toISOString(), drops_s: DROPS, chaos_s: CHAOS_S };

async function newRoom(): Promise<{ code: string; control_token: string }> {
  return (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as never;
}

function control(room: { code: string; control_token: string }, op: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}/api/v1/rooms/${room.code}/transport/${op}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${room.control_token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// ---- part 1: the agent's network drops ----

const dropRows: Array<Array<string | number>> = [];
const dropResults: unknown[] = [];
for (const mode of ['dead link', 'refused'] as const) {
  for (const dropS of DROPS) {
    const proxy = await startProxy({ target: server.url });
    const room = await newRoom();
    const sim = new SimDeviceClock({ sampleRate: RATE, bufferSize: 256, driftPpm: 150, jitterMs: 1, seed: 21 });
    const driver = new DeviceTransport(sim);
    const agent = new RoomAgent({ url: proxy.url, code: room.code, token: room.control_token, driver, backoff: { minDelayMs: 250, maxDelayMs: 2000 } });
    let agentDrops = 0;
    agent.client.on('state', (s) => s === 'reconnecting' && agentDrops++);
    await agent.start();
    const viewer = new RoomClient({ url: server.url, code: room.code });
    await viewer.connect();
    await control(room, 'play');
    while (!viewer.position()?.playing) await sleep(20);
    await sleep(WARMUP_S * 1000);

    const errorMs = () => {
      const local = localNow();
      return Math.abs(viewer.position(local)!.sample_pos - driver.timelineFromDevice(sim.truth(local))) / (RATE / 1000);
    };
    const before: number[] = [];
    for (let i = 0; i < 20; i++) {
      before.push(errorMs());
      await sleep(100);
    }

    // The link fails.
    proxy.blackhole(true);
    proxy.refuse(true);
    if (mode === 'refused') proxy.cutAll();
    const dropStart = performance.now();
    const during: number[] = [];
    let controlStatus = 0;
    let controlMs = 0;
    const seekDuring = (async () => {
      await sleep(Math.min(500, dropS * 500));
      const t = performance.now();
      controlStatus = (await control(room, 'seek', { seconds: 100 })).status;
      controlMs = performance.now() - t;
    })();
    while (performance.now() - dropStart < dropS * 1000) {
      during.push(errorMs());
      await sleep(100);
    }
    // The link comes back; a dead link's old connection is reset only now.
    if (mode === 'dead link') proxy.cutAll();
    proxy.blackhole(false);
    proxy.refuse(false);
    const back = performance.now();
    await seekDuring;
    let recoverS = NaN;
    let goodSince: number | null = null;
    while (performance.now() - back < 30_000) {
      const ok = agent.client.state === 'open' && viewer.agent.connected && errorMs() < 2;
      if (ok && goodSince === null) goodSince = performance.now();
      if (!ok) goodSince = null;
      if (goodSince !== null && performance.now() - goodSince >= 1000) {
        recoverS = (goodSince - back) / 1000;
        break;
      }
      await sleep(50);
    }
    const after: number[] = [];
    for (let i = 0; i < 50; i++) {
      after.push(errorMs());
      await sleep(100);
    }
    // Control works again once the agent is back.
    const seekAfter = (await control(room, 'seek', { seconds: 200 })).status;
    await sleep(500);
    const followed = Math.abs(viewer.position()!.seconds - 200.5) < 0.5;

    const b = summarize(before);
    const d = summarize(during);
    const a = summarize(after);
    dropRows.push([mode, String(dropS), `${controlStatus} in ${(controlMs / 1000).toFixed(1)} s`, b.p99, d.max, Number.isFinite(recoverS) ? recoverS : 'no', a.p50, a.p99, String(agentDrops), `${seekAfter}${followed ? ', followed' : ', NOT followed'}`]);
    dropResults.push({ mode, drop_s: dropS, control_during: { status: controlStatus, ms: controlMs }, error_before_ms: b, error_during_ms: d, recover_s: recoverS, error_after_ms: a, agent_reconnects: agentDrops, seek_after: seekAfter, viewer_followed_seek_after: followed });
    viewer.close();
    await agent.stop();
    await proxy.close();
  }
}
results.agent_drops = dropResults;
console.log(`\n# The agent's network drops (sim +150 ppm; viewer direct; a controller seeks during the drop)`);
console.log(
  table(
    ['link', 'drop s', 'seek during drop', 'err before p99 ms', 'err during max ms', 'recovered after s', 'err after p50 ms', 'err after p99 ms', 'agent reconnects', 'seek after'],
    dropRows,
  ),
);

// ---- part 2: chaos for viewers and job watchers ----

{
  const rand = seededRandom(99);
  const proxy = await startProxy({ target: server.url, delayMs: 20, jitterMs: 20, cuts: { meanLifetimeMs: 4000, minLifetimeMs: 500, establishedOnly: true }, random: rand });
  const room = await newRoom();
  const sim = new SimDeviceClock({ sampleRate: RATE, bufferSize: 256, driftPpm: -120, jitterMs: 1, seed: 8 });
  const driver = new DeviceTransport(sim);
  const agent = new RoomAgent({ url: server.url, code: room.code, token: room.control_token, driver });
  await agent.start();
  await control(room, 'play');

  const viewers = Array.from({ length: 20 }, () => new RoomClient({ url: proxy.url, code: room.code, backoff: { minDelayMs: 100, maxDelayMs: 2000 } }));
  const viewerDrops = viewers.map(() => 0);
  viewers.forEach((v, i) => v.on('state', (s) => s === 'reconnecting' && viewerDrops[i]++));
  await Promise.all(viewers.map((v) => v.connect()));

  const job = (await (await fetch(`${server.url}/api/v1/jobs`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ kind: 'bench.faults', heartbeat_ms: 2000 }) })).json()) as {
    job_id: string;
    publish_token: string;
  };
  const statusUrl = `${proxy.url}/api/v1/jobs/${job.job_id}`;
  const delivered: number[][] = [];
  const doneAt: number[] = [];
  const watchers = Array.from({ length: 20 }, (_, i) => {
    delivered.push([]);
    const w = new JobWatcher({ statusUrl, backoff: { minDelayMs: 100, maxDelayMs: 2000 }, socketRetryMs: 2000, heartbeatMs: 2000, random: rand });
    w.on('event', (e: JobEvent) => delivered[i].push(e.seq));
    w.done.then(() => (doneAt[i] = performance.now())).catch(() => {});
    return w.start();
  });

  const start = performance.now();
  const errors: number[] = [];
  let published = 0;
  let publishFailures = 0;
  let seeks = 0;
  let nextSeek = start + 4000;
  let lastSeekAt = -Infinity;
  let nextStall = start + 5000 + rand() * 10_000;
  let stallEnds = 0;
  const publish = async (body: Record<string, unknown>) => {
    // Idempotent by event id: a retried POST is answered, not logged twice.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const res = await fetch(`${server.url}/api/v1/jobs/${job.job_id}/events`, { method: 'POST', headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (res.ok) return;
      } catch {
        // retry
      }
      publishFailures++;
      await sleep(100);
    }
  };
  while (performance.now() - start < CHAOS_S * 1000) {
    const now = performance.now();
    if (now >= nextSeek) {
      nextSeek += 4000;
      seeks++;
      lastSeekAt = now;
      void control(room, 'seek', { seconds: Math.round(rand() * 600) });
    }
    if (stallEnds === 0 && now >= nextStall) {
      // A stall: every byte held for 1.5 s more, order kept, for 2 s.
      proxy.setDelay(1500, 20);
      stallEnds = now + 2000;
    } else if (stallEnds && now >= stallEnds) {
      proxy.setDelay(20, 20);
      stallEnds = 0;
      nextStall = now + 8000 + rand() * 4000;
    }
    published++;
    await publish({ type: 'progress', progress: Math.min(99, (published / (CHAOS_S * 10)) * 100), stage: 'chaos', id: `e${published}` });
    const local = localNow();
    const truth = driver.timelineFromDevice(sim.truth(local));
    // Within 2.5 s of a seek a viewer may not have heard of it yet (a stall holds bytes for 1.5 s): counted apart.
    if (now - lastSeekAt >= 2500) for (const v of viewers) if (v.state === 'open' && v.position(local)) errors.push(Math.abs(v.position(local)!.sample_pos - truth) / (RATE / 1000));
    await sleep(Math.max(0, 100 - (performance.now() - now)));
  }
  proxy.setDelay(20, 20);
  published++;
  await publish({ type: 'completed', id: 'done' });
  const completedAt = performance.now();
  const finalSeq = published;
  await Promise.race([Promise.allSettled(watchers.map((w) => w.done)), sleep(60_000)]);
  // Let the viewers settle on the last anchor, then compare with the room.
  proxy.setCuts(null);
  await sleep(5000);
  const truthT = (await (await fetch(`${server.url}/api/v1/rooms/${room.code}/transport`)).json()) as { version: number };

  const lost = delivered.map((d) => finalSeq - new Set(d).size);
  const doubled = delivered.map((d) => d.length - new Set(d).size);
  const outOfOrder = delivered.map((d) => d.some((s, i) => i > 0 && s <= d[i - 1])).filter(Boolean).length;
  const completeLatency = doneAt.filter((t) => t !== undefined).map((t) => t - completedAt);
  const local = localNow();
  const truth = driver.timelineFromDevice(sim.truth(local));
  const finalErr = viewers.map((v) => (v.position(local) ? Math.abs(v.position(local)!.sample_pos - truth) / (RATE / 1000) : NaN));
  const onLatest = viewers.filter((v) => v.state === 'open' && v.anchor?.version === truthT.version).length;
  const e = summarize(errors);
  const c = summarize(completeLatency);
  const w = watchers.reduce((acc, x) => ({ dups: acc.dups + x.stats.duplicates, gaps: acc.gaps + x.stats.gaps, polls: acc.polls + x.stats.polls, connects: acc.connects + x.stats.connects }), { dups: 0, gaps: 0, polls: 0, connects: 0 });
  results.chaos = {
    seconds: CHAOS_S,
    proxy: proxy.stats,
    seeks,
    job: { events: finalSeq, publish_retries: publishFailures, watchers_done: completeLatency.length, lost_per_watcher: lost, delivered_twice_per_watcher: doubled, out_of_order_watchers: outOfOrder, repeats_dropped_by_watchers: w.dups, gaps_resumed: w.gaps, polls: w.polls, connects: w.connects, completed_to_done_ms: c },
    viewers: { on_latest_anchor: onLatest, reconnects: viewerDrops, error_ms_while_open_outside_seeks: e, over_100ms_share: errors.filter((x) => x > 100).length / errors.length, final_error_ms: finalErr },
  };
  console.log(`\n# Chaos for ${viewers.length} viewers and ${watchers.length} job watchers, ${CHAOS_S} s: ${proxy.stats.cuts} cuts, stalls of 2 s, ${seeks} seeks, ${finalSeq} job events`);
  console.log(
    table(
      ['client', 'count', 'ended right', 'lost', 'delivered twice', 'reconnects', 'p50', 'p99', 'max'],
      [
        ['job watchers (completed → done, ms)', String(watchers.length), `${completeLatency.length} done, ${outOfOrder} out of order`, String(lost.reduce((a, b) => a + b, 0)), String(doubled.reduce((a, b) => a + b, 0)), String(w.connects - watchers.length), c.p50, c.p99, c.max],
        ['viewers (playhead error ms, open, >2.5 s after a seek)', String(viewers.length), `${onLatest} on the latest anchor`, '-', '-', String(viewerDrops.reduce((a, b) => a + b, 0)), e.p50, e.p99, e.max],
      ],
    ),
  );
  console.log(`samples more than 100 ms off: ${((100 * errors.filter((x) => x > 100).length) / errors.length).toFixed(2)} %`);
  console.log(`final viewer playhead error (ms): ${finalErr.map((x) => x.toFixed(2)).join(' ')}`);
  for (const x of watchers) x.stop();
  for (const v of viewers) v.close();
  await agent.stop();
  await proxy.close();
}

await server.stop();
mkdirSync(new URL('./out', import.meta.url), { recursive: true });
writeFileSync(new URL('./out/faults.json', import.meta.url), JSON.stringify(results, null, 2));
console.log('\nfigures written to bench/out/faults.json');
process.exit(0);
