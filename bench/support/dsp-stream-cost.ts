// What one real-time analysis stream costs the local server: N sources each
// send 20 ms frames of 44.1 kHz f32 at real time (measureLatency), and the
// workerd processes' CPU time over the run, from /proc, is divided by N.
//
//   node bench/support/dsp-stream-cost.ts [N…]      (default 10 50)
//
// Runs a snapshot of the tree (startLocalServer's default), so edits made
// meanwhile do not restart the server under the streams.
import { loadavg } from 'node:os';
import { startLocalServer } from '../../tests/support/local-server.ts';
import { harmonicTone } from '../../wasm/dsp/dsp.shared-cases.ts';
import { measureLatency } from './dsp-latency.ts';
import { cpuSeconds, descendants, procAvailable } from './proc-cpu.ts';
import { summarize } from './stats.ts';

const counts = process.argv.slice(2).map(Number);
const RATE = 44_100;
const SECONDS = Number(process.env.STREAM_SECONDS ?? 8);
const tone = harmonicTone(RATE, 220, 2, 6, 0.3);
const server = await startLocalServer();
try {
  const workerd = procAvailable() ? descendants(server.process.pid!, 'workerd') : [];
  if (!workerd.length) throw new Error('no workerd process found under the local server');
  // Warm up: the first stream compiles the worker and KissFFT.
  await measureLatency(server.url, 1, 1.5, tone, RATE, 0.5);
  for (const n of counts.length ? counts : [10, 50]) {
    const c0 = cpuSeconds(workerd);
    const t0 = performance.now();
    const run = await measureLatency(server.url, n, SECONDS, tone, RATE);
    const wall = (performance.now() - t0) / 1000;
    const cores = (cpuSeconds(workerd) - c0) / wall;
    const s = summarize(run.latencies);
    console.log(
      JSON.stringify({
        streams: n,
        seconds: SECONDS,
        results: run.results,
        expected_results: Math.round((n * SECONDS * RATE) / 882),
        errors: run.errors,
        late_sends: run.lateSends,
        p50_ms: +s.p50.toFixed(1),
        p99_ms: +s.p99.toFixed(1),
        max_ms: +s.max.toFixed(1),
        workerd_cores: +cores.toFixed(3),
        cores_per_stream: +(cores / n).toFixed(4),
        loadavg: loadavg().map((v) => +v.toFixed(2)),
      }),
    );
  }
} finally {
  await server.stop();
}
