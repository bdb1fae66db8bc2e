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
// A live source that must outlast network drops and server restarts uses
// ReconnectingAnalysisSource (the agent's --analyze).
import WebSocket from 'ws';
import { PCM_SOCKET } from './pcm-socket.ts';
import { ANALYSIS_BURST_S, ANALYSIS_CLOSE, ANALYSIS_SILENT_MS, type AnalysisFormat, type AnalysisResult, type AnalysisServerMessage, type AnalysisStats } from '../src/protocol/analysis-messages.ts';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from '../src/client/backoff.ts';

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
  /**
   * Source only: server time (ms) at which the first sample sent on this
   * connection was captured, for exact room beats. A function is called when
   * the hello goes out, for a caller whose first sample is still moving.
   */
  t0ServerMs?: number | (() => number | undefined);
  /** Source only: the `resume_token` of the previous connection's `ready`, to replace it if the server still holds it. */
  resumeToken?: string;
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
  /** performance.now() of the last frame from the server: a source that hears nothing while it sends has a dead link. */
  lastHeardMs = performance.now();
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
      const ws = new WebSocket(url, PCM_SOCKET);
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
        if (client) client.lastHeardMs = performance.now();
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as AnalysisServerMessage;
        if (m.type === 'welcome') {
          const hello: Record<string, unknown> = { type: 'hello', role: opts.role };
          if (opts.role === 'source') {
            hello.sample_rate = opts.sampleRate;
            hello.format = format;
            const t0 = typeof opts.t0ServerMs === 'function' ? opts.t0ServerMs() : opts.t0ServerMs;
            if (t0 !== undefined) hello.t0_server_ms = t0;
            if (opts.resumeToken) hello.resume_token = opts.resumeToken;
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

  /** Drops the socket without a closing handshake (which a dead link would never complete). */
  terminate(): void {
    this.ws.terminate();
  }

  /** The token that lets the next connection of this source replace this one. */
  get resumeToken(): string | undefined {
    return this.ready.resume_token;
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

export interface ReconnectingSourceOptions {
  url: string;
  sampleRate: number;
  format?: AnalysisFormat;
  /** Server time (ms) of a local instant (performance-clock ms, as audio callbacks stamp buffers). */
  serverTime: (localMs: number) => number | undefined;
  onResult?: (r: AnalysisResult) => void;
  log?: (line: string) => void;
  backoff?: Partial<BackoffOptions>;
  /** Audio kept while disconnected, newest first to stay, seconds (default 1). */
  holdS?: number;
  /** A source that has sent this much audio without a frame back (default 1 s of audio and 4 s of time) has a dead link. */
  silentMs?: number;
  connectTimeoutMs?: number;
}

/**
 * A source that keeps streaming across drops: when its socket closes or goes
 * silent it reconnects with backoff, presenting its resume token so the server
 * lets it replace a socket it still holds, and resumes with the newest audio.
 *
 * Stream time counts samples, so audio lost in a drop shifts it: each
 * connection's hello therefore carries the server time of its own first
 * sample, which keeps a room stream's beat positions right after a gap.
 */
export class ReconnectingAnalysisSource {
  /** Connections lost (closed or gone silent) and connections resumed after one. */
  drops = 0;
  resumes = 0;
  private readonly opts: ReconnectingSourceOptions;
  private readonly backoff: BackoffOptions;
  private readonly holdSamples: number;
  private client: AnalysisStreamClient | null = null;
  /** Audio not yet sent, each chunk with the local time of its first sample. */
  private queue: Array<{ audio: Float32Array; startLocalMs: number }> = [];
  private queued = 0;
  /** Set once a hello carried the queue head's time: from then on the head may not be dropped. */
  private anchored = false;
  private sentSinceHeard = 0;
  private attempt = 0;
  private token: string | undefined;
  private stopping = false;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private droppedAtMs = 0;
  private lostSamples = 0;
  private lastFailure = '';

  constructor(opts: ReconnectingSourceOptions) {
    this.opts = opts;
    this.backoff = { ...DEFAULT_BACKOFF, maxDelayMs: 5_000, ...opts.backoff };
    this.holdSamples = Math.round((opts.holdS ?? 1) * opts.sampleRate);
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** Connects once the first audio is there; rejects if that first connection fails (a wrong URL or room should be said, not retried). */
  async start(): Promise<void> {
    await this.waitForAudio();
    const c = await this.open();
    this.attach(c, false);
    const silentMs = this.opts.silentMs ?? ANALYSIS_SILENT_MS;
    this.watchdog = setInterval(() => {
      const c = this.client;
      // Results come at least every 50 ms of audio: a second of audio unanswered for this long means the link is dead, though no close came.
      if (c && this.sentSinceHeard >= this.opts.sampleRate && performance.now() - c.lastHeardMs > silentMs) {
        this.lost(c, `no answer for ${((performance.now() - c.lastHeardMs) / 1000).toFixed(1)} s`);
        c.terminate();
      }
    }, 250);
  }

  /** Audio in capture order; `endLocalMs` is the local time just after its last sample. */
  push(audio: Float32Array, endLocalMs: number): void {
    const c = this.client;
    if (c && c.ws.readyState === WebSocket.OPEN) {
      c.sendAudio(audio);
      this.sentSinceHeard += audio.length;
      return;
    }
    this.queue.push({ audio: audio.slice(), startLocalMs: endLocalMs - (audio.length / this.opts.sampleRate) * 1000 });
    this.queued += audio.length;
    if (!this.anchored) this.trim();
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.watchdog) clearInterval(this.watchdog);
    const c = this.client;
    this.client = null;
    if (!c) return;
    // A dead link never completes the closing handshake.
    const t = setTimeout(() => c.terminate(), 2_000);
    await c.close();
    clearTimeout(t);
  }

  private trim(): void {
    while (this.queued > this.holdSamples) {
      const head = this.queue[0];
      const excess = this.queued - this.holdSamples;
      if (head.audio.length <= excess) {
        this.queue.shift();
        this.queued -= head.audio.length;
        this.lostSamples += head.audio.length;
      } else {
        this.queue[0] = { audio: head.audio.subarray(excess), startLocalMs: head.startLocalMs + (excess / this.opts.sampleRate) * 1000 };
        this.queued -= excess;
        this.lostSamples += excess;
      }
    }
  }

  private async waitForAudio(): Promise<void> {
    while (!this.queue.length && !this.stopping) await new Promise((r) => setTimeout(r, 5));
  }

  private open(): Promise<AnalysisStreamClient> {
    return AnalysisStreamClient.connect(this.opts.url, {
      role: 'source',
      sampleRate: this.opts.sampleRate,
      format: this.opts.format,
      resumeToken: this.token,
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 5_000,
      t0ServerMs: () => {
        this.anchored = true;
        const head = this.queue[0];
        return head ? this.opts.serverTime(head.startLocalMs) : undefined;
      },
      onResult: this.opts.onResult,
      onMessage: () => (this.sentSinceHeard = 0),
    });
  }

  private attach(c: AnalysisStreamClient, resumed: boolean): void {
    this.anchored = false;
    // The queue flushes at once: more than the server's burst allowance would be refused as too fast.
    if (this.queued > this.opts.sampleRate * ANALYSIS_BURST_S * 0.75) {
      c.terminate();
      this.failed('connecting took too long to flush the audio held meanwhile');
      return;
    }
    this.client = c;
    this.attempt = 0;
    this.lastFailure = '';
    this.token = c.resumeToken;
    for (const q of this.queue) c.sendAudio(q.audio);
    this.sentSinceHeard = this.queued;
    this.queue = [];
    this.queued = 0;
    c.lastHeardMs = performance.now();
    if (resumed) {
      this.resumes++;
      this.opts.log?.(`analysis stream resumed after ${((performance.now() - this.droppedAtMs) / 1000).toFixed(1)} s (up to ${(this.lostSamples / this.opts.sampleRate).toFixed(1)} s of audio not analysed)`);
    }
    void c.closed.then(({ code, reason }) => {
      if (this.client !== c) return;
      if (code === ANALYSIS_CLOSE.replaced) {
        // Only this source knows its token: another process presenting it is a copy of this one, and two would take turns forever.
        this.client = null;
        this.opts.log?.('analysis stream taken over by another connection of this source; not reconnecting');
        return;
      }
      this.lost(c, `closed ${code}${reason ? ` ${reason}` : ''}`);
    });
  }

  private lost(c: AnalysisStreamClient, why: string): void {
    if (this.client !== c || this.stopping) return;
    this.client = null;
    this.drops++;
    this.droppedAtMs = performance.now();
    // Audio sent but never answered went down with the link (some of it may have been analysed).
    this.lostSamples = this.sentSinceHeard;
    this.opts.log?.(`analysis stream dropped (${why}); reconnecting`);
    this.schedule();
  }

  private failed(why: string): void {
    this.anchored = false;
    this.trim();
    // One line per kind of failure, not one per attempt.
    if (why !== this.lastFailure) this.opts.log?.(`analysis stream: reconnecting failed (${why}); retrying`);
    this.lastFailure = why;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopping) return;
    this.retry = setTimeout(() => void this.reconnect(), backoffDelay(this.attempt++, this.backoff));
  }

  private async reconnect(): Promise<void> {
    this.retry = null;
    await this.waitForAudio();
    if (this.stopping) return;
    let c: AnalysisStreamClient;
    try {
      c = await this.open();
    } catch (e) {
      return this.failed((e as Error).message);
    }
    if (this.stopping) {
      c.terminate();
      return;
    }
    this.attach(c, true);
  }
}
