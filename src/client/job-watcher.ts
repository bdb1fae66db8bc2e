// Watches a job for browsers and Node (22+, global WebSocket and fetch) and
// delivers each of its events exactly once, in order, ending with the
// terminal one, whatever the network does in between.
//
// - Streams over the job's WebSocket and answers heartbeats.
// - On a drop (or a silence longer than a few heartbeat periods) it reconnects
//   with exponential backoff and jitter, asking for the events after the last
//   sequence it delivered (`?after=SEQ`).
// - After several failed attempts in a row it polls the status URL instead
//   (`GET …?after=SEQ` returns the missed events too), and keeps trying the
//   socket now and then; the first message on a socket ends the polling.
// - Events are delivered strictly by sequence: a repeat is dropped, a gap is
//   never skipped (the watcher asks for a resume instead).
//
//   const w = new JobWatcher({ statusUrl: created.status_url });
//   w.on('event', (e) => bar.update(e.type === 'progress' ? e.progress : 100));
//   const last = await w.start().done;   // completed or error event

import {
  type JobEvent,
  type JobStatus,
  type TerminalEvent,
  JobStatusSchema,
  JobStreamMessageSchema,
  isTerminal,
} from '../protocol/index.ts';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.ts';

export type WatchMode = 'idle' | 'connecting' | 'streaming' | 'polling' | 'done' | 'stopped' | 'failed';

export interface JobWatcherOptions {
  /** The job's status URL (`http(s)://host/api/v1/jobs/ID`), as returned at creation. */
  statusUrl: string;
  /** The job's stream URL; derived from the status URL when absent. */
  streamUrl?: string;
  /** Deliver only events after this sequence (a watcher that restarts from saved state). */
  after?: number;
  backoff?: Partial<BackoffOptions>;
  /** Socket attempts in a row that never opened before polling (twice as many that opened but said nothing). */
  failuresBeforePolling?: number;
  pollIntervalMs?: number;
  /** While polling, try the socket again this often. */
  socketRetryMs?: number;
  /** A socket silent for this many heartbeat periods is presumed dead and replaced. */
  silencePeriods?: number;
  /** Heartbeat period assumed until the server tells (its default is 30 s). */
  heartbeatMs?: number;
  /** A socket whose upgrade has not completed by then is abandoned. */
  connectTimeoutMs?: number;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  random?: () => number;
}

const DEFAULTS = {
  failuresBeforePolling: 3,
  pollIntervalMs: 1_000,
  socketRetryMs: 5_000,
  silencePeriods: 2.5,
  heartbeatMs: 30_000,
  connectTimeoutMs: 10_000,
};

export interface JobWatcherEvents {
  event: JobEvent;
  mode: WatchMode;
  /** Each status document read while polling. */
  status: JobStatus;
  /** Error frames from the server (a refused message) or failures it will retry. */
  warning: { code: string; message: string };
}

export interface JobWatcherStats {
  delivered: number;
  /** Events received again (after a resume or while switching paths) and dropped. */
  duplicates: number;
  /** Events that arrived ahead of a missing one; the watcher asked for a resume. */
  gaps: number;
  connects: number;
  /** Socket attempts that delivered nothing: `unopened` of them never got through the upgrade. */
  socketFailures: number;
  unopened: number;
  /** Times the watcher fell back to polling. */
  fallbacks: number;
  polls: number;
}

/** The job does not exist (never did, or was deleted after its retention). */
export class JobNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobNotFoundError';
  }
}

type Listener<T> = (value: T) => void;

export function streamUrlFor(statusUrl: string): string {
  const u = new URL(statusUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/stream';
  u.search = '';
  return u.toString();
}

/** The terminal event as the status document describes it, for a watcher that had already seen every event. */
export function terminalFromStatus(s: JobStatus): TerminalEvent | null {
  if (s.state === 'completed') return { type: 'completed', job_id: s.job_id, seq: s.seq, timestamp: s.finished_ms ?? s.updated_ms, result_url: s.result_url, summary: s.summary };
  if (s.state === 'error' && s.error) {
    return { type: 'error', job_id: s.job_id, seq: s.seq, timestamp: s.finished_ms ?? s.updated_ms, message: s.error.message, retryable: s.error.retryable, stage: s.error.stage };
  }
  return null;
}

export class JobWatcher {
  readonly statusUrl: string;
  readonly streamUrl: string;
  /** Sequence of the last event delivered. */
  lastSeq: number;
  mode: WatchMode = 'idle';
  terminal: TerminalEvent | null = null;
  readonly stats: JobWatcherStats = { delivered: 0, duplicates: 0, gaps: 0, connects: 0, socketFailures: 0, unopened: 0, fallbacks: 0, polls: 0 };
  readonly done: Promise<TerminalEvent>;

  private readonly opts: typeof DEFAULTS & { backoff: BackoffOptions; random: () => number };
  private readonly WS: typeof WebSocket;
  private readonly fetchFn: typeof fetch;
  private listeners = new Map<keyof JobWatcherEvents, Set<Listener<never>>>();
  private resolveDone!: (e: TerminalEvent) => void;
  private rejectDone!: (e: Error) => void;
  private ws: WebSocket | null = null;
  /** Whether the current socket has delivered anything (proof that the stream works). */
  private wsProved = false;
  /** Socket attempts in a row that delivered nothing. */
  private failures = 0;
  /** Of those, the attempts in a row whose upgrade never went through. */
  private unopened = 0;
  private wsOpened = false;
  private heartbeatMs: number;
  private silenceTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private pollFailures = 0;
  private pollGeneration = 0;
  private resumeAsked = -1;

  constructor(options: JobWatcherOptions) {
    this.statusUrl = options.statusUrl;
    this.streamUrl = options.streamUrl ?? streamUrlFor(options.statusUrl);
    this.lastSeq = options.after ?? 0;
    this.opts = {
      failuresBeforePolling: options.failuresBeforePolling ?? DEFAULTS.failuresBeforePolling,
      pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
      socketRetryMs: options.socketRetryMs ?? DEFAULTS.socketRetryMs,
      silencePeriods: options.silencePeriods ?? DEFAULTS.silencePeriods,
      heartbeatMs: options.heartbeatMs ?? DEFAULTS.heartbeatMs,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      random: options.random ?? Math.random,
    };
    this.heartbeatMs = this.opts.heartbeatMs;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new Error('no WebSocket implementation: pass one as the WebSocket option');
    this.WS = WS;
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.done = new Promise<TerminalEvent>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A caller that only listens to events must not see an unhandled rejection.
    this.done.catch(() => undefined);
  }

  on<K extends keyof JobWatcherEvents>(event: K, fn: Listener<JobWatcherEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  private emit<K extends keyof JobWatcherEvents>(event: K, value: JobWatcherEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) (fn as Listener<JobWatcherEvents[K]>)(value);
  }

  start(): this {
    if (this.mode === 'idle') this.openSocket();
    return this;
  }

  /** Stops watching; `done` rejects unless the job had already ended. */
  stop(): void {
    if (this.finished()) return;
    this.setMode('stopped');
    this.teardown();
    this.rejectDone(new Error('stopped'));
  }

  // ---- delivery: strictly by sequence ----

  private deliver(e: JobEvent): void {
    if (this.finished()) return;
    if (e.seq <= this.lastSeq) {
      this.stats.duplicates++;
      // A watcher started after the end hears the terminal event again: that is how it ended.
      if (isTerminal(e)) this.finish(e);
      return;
    }
    if (e.seq > this.lastSeq + 1) {
      // Something in between is missing: never skip it; ask again from here.
      this.stats.gaps++;
      this.askResume();
      return;
    }
    this.lastSeq = e.seq;
    this.stats.delivered++;
    this.emit('event', e);
    if (isTerminal(e)) this.finish(e);
  }

  private askResume(): void {
    if (this.resumeAsked === this.lastSeq) return;
    this.resumeAsked = this.lastSeq;
    this.send({ type: 'resume', after: this.lastSeq });
  }

  private finish(e: TerminalEvent): void {
    this.terminal = e;
    this.setMode('done');
    this.teardown();
    this.resolveDone(e);
  }

  private fail(err: Error): void {
    if (this.finished()) return;
    this.setMode('failed');
    this.teardown();
    this.rejectDone(err);
  }

  // ---- the socket ----

  private openSocket(): void {
    if (this.finished()) return;
    if (this.mode !== 'polling') this.setMode('connecting');
    const url = new URL(this.streamUrl);
    url.searchParams.set('after', String(this.lastSeq));
    let ws: WebSocket;
    try {
      ws = new this.WS(url.toString());
    } catch (e) {
      this.emit('warning', { code: 'connect_failed', message: e instanceof Error ? e.message : String(e) });
      this.socketFailed();
      return;
    }
    this.stats.connects++;
    this.ws = ws;
    this.wsProved = false;
    this.wsOpened = false;
    this.resumeAsked = -1;
    this.armSilence();
    ws.addEventListener('open', () => {
      if (this.ws !== ws || this.finished()) return;
      // The upgrade went through: the socket takes over from polling. Failures
      // are forgiven only once it delivers something (see onSocketMessage).
      this.wsOpened = true;
      this.unopened = 0;
      this.armSilence();
      this.stopPolling();
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.setMode('streaming');
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.onSocketMessage(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onSocketClose(ev.code);
    });
    // Errors are always followed by a close, which does the work.
    ws.addEventListener('error', () => undefined);
  }

  private onSocketMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let parsed;
    try {
      parsed = JobStreamMessageSchema.safeParse(JSON.parse(data));
    } catch {
      this.emit('warning', { code: 'bad_json', message: 'the server sent a frame that is not JSON' });
      return;
    }
    if (!parsed.success) {
      this.emit('warning', { code: 'bad_frame', message: 'the server sent a frame this watcher does not understand' });
      return;
    }
    const msg = parsed.data;
    this.armSilence();
    if (!this.wsProved) {
      this.wsProved = true;
      this.failures = 0;
    }
    if (msg.type === 'heartbeat') {
      this.send({ type: 'pong' });
      if (msg.interval_ms !== this.heartbeatMs) {
        this.heartbeatMs = msg.interval_ms;
        this.armSilence();
      }
      if (msg.seq > this.lastSeq) {
        this.stats.gaps++;
        this.askResume();
      }
      return;
    }
    if ('code' in msg) {
      this.emit('warning', { code: msg.code, message: msg.message });
      return;
    }
    this.deliver(msg as JobEvent);
  }

  private onSocketClose(code: number): void {
    this.clearSilence();
    if (this.finished()) return;
    if (code === 4010) {
      this.fail(new JobNotFoundError('the job was deleted after its retention'));
      return;
    }
    if (code === 1000 && !this.wsProved) {
      // The job ended before this socket had anything new to say: read the final state.
      this.startPolling();
      return;
    }
    if (!this.wsProved) this.socketFailed();
    else this.scheduleReconnect();
  }

  private socketFailed(): void {
    this.failures++;
    if (!this.wsOpened) {
      this.unopened++;
      this.stats.unopened++;
    }
    this.stats.socketFailures++;
    if (this.mode === 'polling') {
      this.retryTimer = setTimeout(() => this.openSocket(), this.opts.socketRetryMs);
      return;
    }
    // Sockets that never open (blocked upgrades, an unreachable stream) send
    // the watcher to polling soon; sockets that open and drop before saying
    // anything only after twice as many, since the next one may well work.
    const limit = this.opts.failuresBeforePolling;
    if (this.unopened >= limit || this.failures >= 2 * limit) {
      this.startPolling();
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.finished()) return;
    this.setMode('connecting');
    const attempt = Math.max(0, this.failures - 1);
    const delay = this.wsProved && this.failures === 0 ? backoffDelay(0, this.opts.backoff, this.opts.random) : backoffDelay(attempt, this.opts.backoff, this.opts.random);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.openSocket(), delay);
  }

  private send(msg: Record<string, unknown>): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== this.WS.OPEN) return;
    try {
      ws.send(JSON.stringify(msg));
    } catch {
      // closing; the close handler reconnects
    }
  }

  /** A socket that says nothing for a few heartbeat periods is dead even if TCP has not noticed. */
  private armSilence(): void {
    this.clearSilence();
    const ws = this.ws;
    if (!ws) return;
    // Before the upgrade completes the limit is the connect timeout; after it, a
    // few heartbeat periods.
    const opened = this.wsOpened;
    const ms = opened ? this.heartbeatMs * this.opts.silencePeriods : this.opts.connectTimeoutMs;
    this.silenceTimer = setTimeout(() => {
      if (this.ws !== ws) return;
      this.emit(
        'warning',
        opened
          ? { code: 'silent', message: `no message for ${this.opts.silencePeriods} heartbeat periods; reconnecting` }
          : { code: 'connect_timeout', message: `the stream did not open within ${ms} ms` },
      );
      this.ws = null;
      try {
        ws.close(4000, opened ? 'silent' : 'connect timeout');
      } catch {
        // already closing
      }
      this.onSocketClose(4000);
    }, ms);
  }

  private clearSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = null;
  }

  // ---- polling: the fallback ----

  private startPolling(): void {
    if (this.mode !== 'polling') this.stats.fallbacks++;
    this.stopPolling();
    this.setMode('polling');
    this.pollFailures = 0;
    void this.poll(this.pollGeneration);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.openSocket(), this.opts.socketRetryMs);
  }

  private stopPolling(): void {
    // A poll in flight sees the new generation when it returns, and stops there.
    this.pollGeneration++;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  private async poll(generation: number): Promise<void> {
    this.pollTimer = null;
    const current = () => this.mode === 'polling' && generation === this.pollGeneration;
    if (!current()) return;
    let next = this.opts.pollIntervalMs;
    try {
      const url = new URL(this.statusUrl);
      url.searchParams.set('after', String(this.lastSeq));
      this.stats.polls++;
      const res = await this.fetchFn(url.toString(), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
      if (res.status === 404) {
        this.fail(new JobNotFoundError('no such job (it may have expired)'));
        return;
      }
      if (!res.ok) throw new Error(`status URL answered HTTP ${res.status}`);
      const status = JobStatusSchema.parse(await res.json());
      if (!current()) return;
      if (status.heartbeat_ms) this.heartbeatMs = status.heartbeat_ms;
      for (const e of status.events ?? []) this.deliver(e as JobEvent);
      if (this.finished()) return;
      const ended = !status.more && status.seq <= this.lastSeq ? terminalFromStatus(status as JobStatus) : null;
      if (ended) {
        // The caller started after the end: the status is the final state.
        this.finish(ended);
        return;
      }
      this.emit('status', status as JobStatus);
      this.pollFailures = 0;
      if (status.more) next = 0;
    } catch (e) {
      this.pollFailures++;
      this.emit('warning', { code: 'poll_failed', message: e instanceof Error ? e.message : String(e) });
      next = backoffDelay(this.pollFailures - 1, { ...this.opts.backoff, minDelayMs: this.opts.pollIntervalMs }, this.opts.random);
    }
    if (current()) this.pollTimer = setTimeout(() => void this.poll(generation), next);
  }

  // ---- plumbing ----

  private finished(): boolean {
    return this.mode === 'done' || this.mode === 'stopped' || this.mode === 'failed';
  }

  private setMode(mode: WatchMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    this.emit('mode', mode);
  }

  private teardown(): void {
    this.clearSilence();
    this.stopPolling();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000, 'done');
      } catch {
        // already closed
      }
    }
  }
}
