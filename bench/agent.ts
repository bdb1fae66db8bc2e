// npm run bench:agent — viewers following a drifting audio device.
//
// The sim source runs at +200 ppm and then −200 ppm against the host clock,
// with 2 ms of callback jitter; 20 viewers sit behind delaying proxies
// (one-way 20–80 ms, jitter ±15 ms). At the same instants we compare each
// viewer's playhead with the device's true sample clock (which only a
// simulated device can tell), and count the room's corrections. The baseline
// in the same run is the same viewers with corrections ignored: the playhead a
// client would draw from the first anchor alone.

import { writeFileSync, mkdirSync } from 'node:fs';
import { startLocalServer } from '../tests/support/local-server.ts';
import { startProxy, seededRandom, type Proxy } from './support/proxy.ts';
import { RoomClient } from '../src/client/room-client.ts';
import { localNow } from '../src/client/clock-sync.ts';
import { positionAt, type Anchor } from '../src/protocol/index.ts';
import { RoomAgent } from '../agent/room-agent.ts';
import { DeviceTransport } from '../agent/transport-driver.ts';
import { SimDeviceClock } from '../agent/sources/sim.ts';
import { summarize, table } from './support/stats.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 20);
const VIEWERS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const server = await startLocalServer();
const rand = seededRandom(7);
const proxies: Proxy[] = [];
for (let i = 0; i < VIEWERS; i++) {
  const delay = 20 + (60 * i) / (VIEWERS - 1);
  proxies.push(await startProxy({ target: server.url, delayMs: delay - 15, jitterMs: 30, random: rand }));
}

const results: Record<string, unknown> = { date: new Date().toISOString(), seconds: SECONDS };
const rows: Array<Array<string | number>> = [];

for (const ppm of [200, -200]) {
  const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string; control_token: string };
  const sim = new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: ppm, jitterMs: 2, seed: 5 });
  const driver = new DeviceTransport(sim);
  const agent = new RoomAgent({ url: server.url, code: room.code, token: room.control_token, driver });
  await agent.start();
  const viewers = proxies.map((p) => new RoomClient({ url: p.url, code: room.code }));
  await Promise.all(viewers.map((v) => v.connect()));
  await fetch(`${server.url}/api/v1/rooms/${room.code}/transport/play`, { method: 'POST', headers: { authorization: `Bearer ${room.control_token}` } });
  while (!viewers.every((v) => v.position()?.playing)) await sleep(20);
  const firstAnchors: Anchor[] = viewers.map((v) => v.anchor!);
  await sleep(WARMUP_S * 1000);

  let corrections = 0;
  viewers[0].on('anchor', ({ cause }) => cause === 'correction' && corrections++);
  const errors: number[] = [];
  const naiveErrors: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    await sleep(50);
    const local = localNow();
    const truth = driver.timelineFromDevice(sim.truth(local));
    viewers.forEach((v, i) => {
      errors.push(Math.abs((v.position(local)!.sample_pos - truth) / 48));
      naiveErrors.push(Math.abs((positionAt(firstAnchors[i], v.serverNow(local)).sample_pos - truth) / 48));
    });
  }
  const e = summarize(errors);
  const n = summarize(naiveErrors);
  const perS = corrections / SECONDS;
  const fitted = (viewers[0].anchor!.rate / 48_000 - 1) * 1e6;
  rows.push([`${ppm > 0 ? '+' : ''}${ppm} ppm`, e.p50, e.p99, e.max, n.p99, perS, fitted]);
  results[`ppm_${ppm}`] = { error_ms: e, uncorrected_error_ms: n, corrections_per_s: perS, fitted_ppm: fitted, samples: errors.length };
  for (const v of viewers) v.close();
  await agent.stop();
}

console.log(`\n# Viewers following a drifting device: sim with 2 ms callback jitter, ${VIEWERS} viewers behind 20–80 ms ±15 ms proxies, ${SECONDS} s after a ${WARMUP_S} s warm-up`);
console.log(table(['device', 'error p50 ms', 'error p99 ms', 'max ms', 'uncorrected p99 ms', 'corrections / s', 'fitted ppm'], rows));
for (const p of proxies) await p.close();
await server.stop();
mkdirSync(new URL('./out', import.meta.url), { recursive: true });
writeFileSync(new URL('./out/agent.json', import.meta.url), JSON.stringify(results, null, 2));
console.log(`\nfigures written to bench/out/agent.json (targets: p99 ≤ 2 ms, ≤ 1 correction/s)`);
process.exit(0);
