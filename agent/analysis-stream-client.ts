// A Node client for live analysis streams (`WS /api/v1/analysis/:id`,
// `WS /api/v1/rooms/:code/analysis/:name`): the agent's `--analyze` sends its
// source through this, and tests and the benchmark use it too.
//
//   const client = await AnalysisStreamClient.connect(analysisUrl(base, { room: 'ABC234', name: 'agent' }), {
//     role: 'source', sampleRate: 48_000, onResult: (r) => console.log(r.t, r.pitch?.note),
//   });
//   client.sendAudio(chunk);           // Float32Array, any length; sent as little-endian f32 (or s16)
//   await client.close();
//
// or, for a whole buffer paced at real time: await streamToAnalysis(url, samples, { sampleRate: 44_100 }).
import WebSocket from 'ws';
import type { AnalysisFormat, AnalysisResult, AnalysisServerMessage, AnalysisStats } from '../src/protocol/analysis-messages.ts';

export type { AnalysisResult, AnalysisServerMessage, AnalysisStats };

/** ws:// URL of a stream: free-standing by id, or owned by a room. */
export function analysisUrl(base: string | URL, target: { id: string } | { room: string; name: string }): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
  u.pathname = 'id' in target ? `/api/v1/analysis/${encodeURIComponent(target.id)}` : `/api/v1/rooms/${encodeURIComponent(target.room)}/analysis/${encodeURIComponent(target.name)}`;
  u.search = '';
  return u.toString();
}

/** The URL with `role=source`: the server accepts a source's socket without hibernation. */
export function withSourceRole(url: string): string {
  const u = new URL(url);
  u.searchParams.set('role', 'source');
  return u.toString();
}

export interface AnalysisClientOptions {
  role: 'source' | 'watcher';
  /** Source only. */
  sampleRate?: number;
  format?: AnalysisFormat;
  /** Source only: server time (ms) at which the first sample was captured, for exact room beats. */
  t0ServerMs?: number;
  onResult?: (r: AnalysisResult) => void;
  /** Every message, results included. */
  onMessage?: (m: AnalysisServerMessage) => void;
  connectTimeoutMs?: number;
}

export class AnalysisStreamError extends Error {
  readonly code: string;
  readonly reason: string;
  constructor(code: string, reason: string, message: string) {
    super(message);
    this.name = 'AnalysisStreamError';
    this.code = code;
    this.reason = reason;
  }
}

export class AnalysisStreamClient {
  readonly ws: WebSocket;
  readonly ready: Extract<AnalysisServerMessage, { type: 'ready' }>;
  readonly format: AnalysisFormat;
  /** Error frames received (the stream goes on after most of them). */
  readonly errors: Array<Extract<AnalysisServerMessage, { type: 'error' }>> = [];
  private waiters = new Map<string, (m: AnalysisServerMessage) => void>();
  private closedPromise: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket, ready: Extract<AnalysisServerMessage, { type: 'ready' }>, format: AnalysisFormat, closed: Promise<{ code: number; reason: string }>) {
    this.ws = ws;
    this.ready = ready;
    this.format = format;
    this.closedPromise = closed;
  }

  /** Opens the socket, says hello and resolves once the stream is ready. */
  static connect(url: string, opts: AnalysisClientOptions): Promise<AnalysisStreamClient> {
    const format = opts.format ?? 'f32';
    if (opts.role === 'source' && !opts.sampleRate) return Promise.reject(new Error('a source needs sampleRate'));
    // A source says so at connect time: the server then gives it a socket
    // without hibernation, which costs it far less per audio frame.
    if (opts.role === 'source') url = withSourceRole(url);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let client: AnalysisStreamClient | null = null;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no answer from ${url} within ${opts.connectTimeoutMs ?? 10_000} ms`));
      }, opts.connectTimeoutMs ?? 10_000);
      const closed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => {
          let msg = `HTTP ${res.statusCode}`;
          try {
            const e = JSON.parse(body).error;
            if (e?.message) msg = `${e.message} (${e.code}, HTTP ${res.statusCode})`;
          } catch {
            // not JSON
          }
          reject(new Error(msg));
        });
      });
      ws.once('error', (e) => {
        clearTimeout(timer);
        if (!client) reject(e);
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as AnalysisServerMessage;
        if (m.type === 'welcome') {
          const hello: Record<string, unknown> = { type: 'hello', role: opts.role };
          if (opts.role === 'source') {
            hello.sample_rate = opts.sampleRate;
            hello.format = format;
            if (opts.t0ServerMs !== undefined) hello.t0_server_ms = opts.t0ServerMs;
          }
          ws.send(JSON.stringify(hello));
          return;
        }
        if (!client) {
          if (m.type === 'ready') {
            clearTimeout(timer);
            client = new AnalysisStreamClient(ws, m, format, closed);
            resolve(client);
          } else if (m.type === 'error') {
            clearTimeout(timer);
            ws.close();
            reject(new AnalysisStreamError(m.code, m.reason, m.message));
          }
          return;
        }
        if (m.type === 'error') client.errors.push(m);
        if (m.type === 'analysis') opts.onResult?.(m);
        opts.onMessage?.(m);
        const w = client.waiters.get(m.type);
        if (w) {
          client.waiters.delete(m.type);
          w(m);
        }
      });
    });
  }

  /** Sends mono samples (-1..1) as one binary frame in the declared format. */
  sendAudio(samples: Float32Array): void {
    if (this.format === 'f32') {
      const out = Buffer.allocUnsafe(samples.length * 4);
      for (let i = 0; i < samples.length; i++) out.writeFloatLE(samples[i], i * 4);
      this.ws.send(out);
    } else {
      const out = Buffer.allocUnsafe(samples.length * 2);
      for (let i = 0; i < samples.length; i++) out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768))), i * 2);
      this.ws.send(out);
    }
  }

  /** The stream's counters. */
  stats(timeoutMs = 5000): Promise<AnalysisStats> {
    return this.request('stats', { type: 'stats' }, timeoutMs) as Promise<AnalysisStats>;
  }

  /** Round trip to the object, ms. */
  async ping(timeoutMs = 5000): Promise<number> {
    const t0 = Date.now();
    await this.request('pong', { type: 'ping', t0 }, timeoutMs);
    return Date.now() - t0;
  }

  /** Resolves when everything queued so far has left this process. */
  async drain(): Promise<void> {
    while (this.ws.bufferedAmount > 0 && this.ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 5));
  }

  async close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'done');
    return this.closedPromise;
  }

  get closed(): Promise<{ code: number; reason: string }> {
    return this.closedPromise;
  }

  private request(answer: string, msg: unknown, timeoutMs: number): Promise<AnalysisServerMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(answer);
        reject(new Error(`no ${answer} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(answer, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.ws.send(JSON.stringify(msg));
    });
  }
}

export interface StreamToAnalysisOptions {
  sampleRate: number;
  format?: AnalysisFormat;
  /** Samples per binary frame; default 20 ms. */
  frameSamples?: number;
  /** Pace frames at real time (default true); false sends as fast as the burst allowance lets. */
  realTime?: boolean;
  t0ServerMs?: number;
  onResult?: (r: AnalysisResult) => void;
  /** Wait this long after the last frame for its results (default 500 ms). */
  settleMs?: number;
  signal?: AbortSignal;
}

/**
 * Streams samples (a buffer, or chunks from a live source) to an analysis
 * stream as its source, paced at real time, and returns every result.
 */
export async function streamToAnalysis(
  url: string,
  samples: Float32Array | AsyncIterable<Float32Array>,
  opts: StreamToAnalysisOptions,
): Promise<{ results: AnalysisResult[]; stats: AnalysisStats; errors: AnalysisStreamClient['errors'] }> {
  const results: AnalysisResult[] = [];
  const client = await AnalysisStreamClient.connect(url, {
    role: 'source',
    sampleRate: opts.sampleRate,
    format: opts.format,
    t0ServerMs: opts.t0ServerMs,
    onResult: (r) => {
      results.push(r);
      opts.onResult?.(r);
    },
  });
  try {
    const frame = opts.frameSamples ?? Math.round(opts.sampleRate * 0.02);
    const realTime = opts.realTime ?? true;
    const start = performance.now();
    let sent = 0;
    const send = async (x: Float32Array) => {
      for (let i = 0; i < x.length; i += frame) {
        if (opts.signal?.aborted) return;
        const chunk = x.subarray(i, Math.min(x.length, i + frame));
        if (realTime) {
          const due = start + (sent / opts.sampleRate) * 1000;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        }
        client.sendAudio(chunk);
        sent += chunk.length;
      }
    };
    if (samples instanceof Float32Array) await send(samples);
    else for await (const chunk of samples) await send(chunk);
    await client.drain();
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 500));
    const stats = await client.stats();
    return { results, stats, errors: client.errors };
  } finally {
    await client.close();
  }
}
