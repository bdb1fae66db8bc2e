// Streams PCM to bench/support/bare-sink, the least a Durable Object can do
// with audio frames: the runtime's own cost of carrying a match stream's
// traffic (connection, messages, pacing), measured beside roomtone's in the
// same run.
import WebSocket from 'ws';

export interface SinkStreamOptions {
  /** Seconds of audio per frame, given the seconds already sent (a match client follows the server's advice). */
  frameS: (sentS: number) => number;
  /** Paced as a live source (a frame goes out once its last sample is heard), or all at once. */
  realtime: boolean;
}

/** Resolves once the sink has closed the socket in answer to ours: it has read every frame by then. */
export async function streamToSink(baseUrl: string, id: string, samples: Float32Array, rate: number, opts: SinkStreamOptions): Promise<void> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/sink/${id}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const start = performance.now();
  for (let sent = 0; sent < samples.length; ) {
    const n = Math.max(1, Math.round(opts.frameS(sent / rate) * rate));
    const part = samples.slice(sent, Math.min(samples.length, sent + n));
    sent += part.length;
    if (opts.realtime) {
      const wait = start + (sent / rate) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    ws.send(part.buffer);
  }
  ws.close(1000, 'done');
  await closed;
}
