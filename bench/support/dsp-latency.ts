// Streaming latency of live analysis against the local server: C concurrent
// sources, each sending 20 ms frames of f32 audio at real time; for every
// result, the time from sending the binary frame that completed its analysis
// window to receiving the result.
import WebSocket from 'ws';
import { analysisUrl, withSourceRole } from '../../agent/analysis-stream-client.ts';
import type { AnalysisServerMessage } from '../../src/protocol/analysis-messages.ts';

export interface LatencyRun {
  streams: number;
  seconds: number;
  /** One value per result, ms. */
  latencies: number[];
  results: number;
  errors: number;
  /** Frames that left later than their real-time slot by more than 5 ms (client overload). */
  lateSends: number;
}

interface Stream {
  ws: WebSocket;
  sentSamples: number;
  /** Send time (performance.now) of each frame, with the stream sample its end reaches. */
  frameEnds: number[];
  frameTimes: number[];
  window: number;
  ready: boolean;
}

export async function measureLatency(base: string, streams: number, seconds: number, signal: Float32Array, rate: number, warmupS = 1): Promise<LatencyRun> {
  const frame = Math.round(rate * 0.02);
  const run: LatencyRun = { streams, seconds, latencies: [], results: 0, errors: 0, lateSends: 0 };
  const tag = `lat-${streams}-${Date.now().toString(36)}`;
  const all: Stream[] = await Promise.all(
    Array.from({ length: streams }, (_, i) =>
      new Promise<Stream>((resolve, reject) => {
        const ws = new WebSocket(process.env.BENCH_HIBERNATING_SOURCE ? analysisUrl(base, { id: `${tag}-${i}` }) : withSourceRole(analysisUrl(base, { id: `${tag}-${i}` })));
        const s: Stream = { ws, sentSamples: 0, frameEnds: [], frameTimes: [], window: 2048, ready: false };
        ws.on('error', reject);
        ws.on('message', (data, binary) => {
          if (binary) return;
          const now = performance.now();
          const m = JSON.parse(data.toString()) as AnalysisServerMessage;
          if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'hello', role: 'source', sample_rate: rate, format: 'f32' }));
          else if (m.type === 'ready') {
            s.window = m.window ?? 2048;
            s.ready = true;
            resolve(s);
          } else if (m.type === 'error') run.errors++;
          else if (m.type === 'analysis') {
            run.results++;
            if (m.t < warmupS) return;
            // The result for the frame centred at t needed samples up to t·rate + N/2.
            const need = Math.round(m.t * rate) + s.window / 2;
            let k = 0;
            while (k < s.frameEnds.length && s.frameEnds[k] < need) k++;
            if (k < s.frameEnds.length) run.latencies.push(now - s.frameTimes[k]);
          }
        });
      }),
    ),
  );
  const start = performance.now() + 50;
  const total = Math.round(seconds * rate);
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      let done = true;
      for (const s of all) {
        while (s.sentSamples < total) {
          const due = start + (s.sentSamples / rate) * 1000;
          if (due > now) break;
          if (now - due > 5) run.lateSends++;
          const n = Math.min(frame, total - s.sentSamples);
          const chunk = new Float32Array(n);
          for (let i = 0; i < n; i++) chunk[i] = signal[(s.sentSamples + i) % signal.length];
          s.ws.send(Buffer.from(chunk.buffer));
          s.sentSamples += n;
          s.frameEnds.push(s.sentSamples);
          s.frameTimes.push(performance.now());
        }
        if (s.sentSamples < total) done = false;
      }
      if (done) setTimeout(resolve, 1000);
      else setTimeout(tick, 2);
    };
    tick();
  });
  for (const s of all) s.ws.close();
  return run;
}
