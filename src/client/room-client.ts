// The room client for browsers and Node (22+, global WebSocket): joins a room,
// keeps an offset to server time, and answers position() at any instant by
// extrapolating the room's anchor locally. Reconnects by itself and resumes
// without a jump: the clock estimate and the last anchor survive the gap.

import {
  type Anchor,
  type AgentPresence,
  type ControlOp,
  type Position,
  type Role,
  type RoomServerMessage,
  type TransportFrame,
  normalizeRoomCode,
  positionAt,
} from '../protocol/index.ts';
import { ClockSync, type ClockSyncOptions, localNow } from './clock-sync.ts';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.ts';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' | 'expired' | 'not_found';

export interface RoomClientOptions {
  /** Server base URL (http://127.0.0.1:8787) or the room's ws_url. */
  url: string;
  code: string;
  /** Control token: makes this client a controller (or the agent, with role "agent"). */
  token?: string;
  role?: Role;
  /** Ask the room to push full state frames at this rate (1–60 Hz). */
  ticks?: number;
  WebSocket?: typeof WebSocket;
  backoff?: Partial<BackoffOptions>;
  sync?: Partial<ClockSyncOptions>;
  /** Pings sent right after joining; more give a better first estimate. */
  joinPings?: number;
  pingSpacingMs?: number;
  /** A small burst of pings this often keeps the estimate fresh. */
  resyncEveryMs?: number;
  resyncPings?: number;
  /** For this long after the first join, ping every `warmupEveryMs` instead, so the estimate settles in seconds rather than minutes. */
  warmupMs?: number;
  warmupEveryMs?: number;
  commandTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Silence for this long (with a ping due every second) means the link is
 * dead. Long enough that a room busy for a few seconds is not abandoned by
 * all its viewers at once: each would come back with a join, on top of the
 * load that made it slow.
 */
const DEAD_LINK_MS = 8_000;
/** A pong later than this is not waited for (and its ping no longer counts as outstanding). */
const PING_TIMEOUT_MS = 2_000;

/** Gives up a socket at once: `ws`'s terminate() frees it now; a browser socket can only be asked to close. */
function abandon(ws: WebSocket, reason: string): void {
  try {
    const t = (ws as unknown as { terminate?: () => void }).terminate;
    if (t) t.call(ws);
    else ws.close(4100, reason);
  } catch {
    // closing anyway
  }
}

const DEFAULTS = {
  joinPings: 20,
  // Far enough apart that one ping's jitter does not queue the next behind it.
  pingSpacingMs: 40,
  // One ping a second keeps ~100 samples in the window: enough for the
  // per-direction minima to sit within a fraction of a millisecond of the
  // path's floor under heavy jitter. The room pushes nothing meanwhile.
  resyncEveryMs: 1_000,
  resyncPings: 1,
  // Each direction's minimum delay lands within about (jitter range) / n of
  // the floor after n samples: 100 samples in the first 10 s take the offset
  // error under half a millisecond behind ±15 ms of jitter, where one a second
  // would need minutes. Costs 10 small messages a second per new viewer, once.
  warmupMs: 10_000,
  warmupEveryMs: 100,
  commandTimeoutMs: 5_000,
};

export interface RoomClientEvents {
  welcome: { code: string; role: Role; anchor: Anchor };
  anchor: { anchor: Anchor; cause: string };
  state: ConnectionState;
  agent: AgentPresence;
  tick: TransportFrame;
  sync: { offsetMs: number; uncertaintyMs: number; rttMs: number };
  /** Error frames from the room that no pending command claimed. */
  error: { code: string; message: string };
  expired: { reason: string };
  /** Every message from the room, after the client has handled it (the agent listens for `control`). */
  message: RoomServerMessage;
}

type Listener<T> = (value: T) => void;

export class RoomCommandError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RoomCommandError';
    this.code = code;
  }
}

export class RoomClient {
  readonly code: string;
  readonly sync: ClockSync;
  anchor: Anchor | null = null;
  agent: AgentPresence = { connected: false, since_ms: null };
  role: Role = 'viewer';
  state: ConnectionState = 'idle';

  private readonly opts: RoomClientOptions & typeof DEFAULTS;
  private readonly backoff: BackoffOptions;
  private readonly WS: typeof WebSocket;
  private ws: WebSocket | null = null;
  private attempt = 0;
  private pingId = 0;
  private pendingPings = new Map<number, number>();
  private commandId = 0;
  private pending = new Map<string, { resolve: (v: { version: number }) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private resyncTimer: ReturnType<typeof setTimeout> | null = null;
  /** Local time of the first join: the warm-up runs from here, once per client, not per reconnect. */
  private firstJoinMs: number | null = null;
  private listeners = new Map<keyof RoomClientEvents, Set<Listener<never>>>();
  private ready: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** Local time of the last frame from the room: a link that goes silent is abandoned. */
  private lastHeardMs = 0;
  private stopped = false;

  constructor(options: RoomClientOptions) {
    const code = normalizeRoomCode(options.code);
    if (!code) throw new RangeError(`not a room code: ${options.code}`);
    this.code = code;
    this.opts = { ...DEFAULTS, ...options };
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.sync = new ClockSync(options.sync);
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!WS) throw new Error('no WebSocket implementation: pass options.WebSocket (e.g. from the ws package)');
    this.WS = WS;
  }

  on<K extends keyof RoomClientEvents>(event: K, fn: Listener<RoomClientEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  private emit<K extends keyof RoomClientEvents>(event: K, value: RoomClientEvents[K]): void {
    for (const fn of this.listeners.get(event) ?? []) (fn as Listener<RoomClientEvents[K]>)(value);
  }

  /** Resolves once joined (and authenticated, with a token) and the first clock estimate is in. */
  connect(): Promise<void> {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      this.ready = { resolve, reject };
      this.open();
    });
  }

  close(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.endLink(new RoomCommandError('closed', 'the client was closed'));
    try {
      this.ws?.close(1000, 'bye');
    } catch {
      // already closed
    }
    this.ws = null;
    this.setState('closed');
  }

  /** Server time now, by this client's estimate. */
  serverNow(local = localNow()): number {
    return this.sync.serverNow(local);
  }

  /** The playhead at a local instant (default now), or null before the first anchor. */
  position(local = localNow()): Position | null {
    return this.anchor ? positionAt(this.anchor, this.sync.serverNow(local)) : null;
  }

  play(args: { at?: 'now' | 'next_bar' | number } = {}) {
    return this.command('play', args);
  }
  pause() {
    return this.command('pause', {});
  }
  resume() {
    return this.command('resume', {});
  }
  stop() {
    return this.command('stop', {});
  }
  seek(args: { seconds: number } | { samples: number } | { beats: number }) {
    return this.command('seek', args);
  }
  tempo(args: { bpm: number; beats_per_bar?: number }) {
    return this.command('tempo', args);
  }

  /** Sends a control command and resolves with the room's version once acknowledged. */
  command(op: ControlOp, args: Record<string, unknown>): Promise<{ version: number }> {
    const ws = this.ws;
    if (!ws || this.state !== 'open') return Promise.reject(new RoomCommandError('not_connected', 'not connected to the room'));
    const id = `c${++this.commandId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RoomCommandError('timeout', `${op} was not acknowledged in time`));
      }, this.opts.commandTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ type: op, id, ...args }));
    });
  }

  /** Sends any protocol message (the agent uses this for its own messages). */
  send(msg: Record<string, unknown>): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  // ---- connection ----

  private wsUrl(): string {
    const u = new URL(this.opts.url);
    u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
    u.pathname = `/api/v1/rooms/${this.code}/ws`;
    const role = this.opts.role ?? (this.opts.token ? 'controller' : 'viewer');
    const q = new URLSearchParams();
    if (this.opts.ticks) q.set('ticks', String(this.opts.ticks));
    // Tells the worker to connect us to the room itself rather than a relay.
    if (role !== 'viewer') q.set('role', role);
    u.search = q.toString() ? `?${q}` : '';
    return u.toString();
  }

  private httpUrl(path: string): string {
    const u = new URL(this.opts.url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
    u.pathname = path;
    u.search = '';
    return u.toString();
  }

  private setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private open(): void {
    if (this.stopped) return;
    this.setState(this.attempt === 0 && !this.anchor ? 'connecting' : 'reconnecting');
    let welcomed = false;
    const ws = new this.WS(this.wsUrl());
    this.ws = ws;
    // An upgrade that never completes (a black-holed link) must not hang the client.
    const connectTimer = setTimeout(() => {
      this.timers.delete(connectTimer);
      if (this.ws !== ws || welcomed) return;
      abandon(ws, 'connect timeout');
      this.onSocketGone(ws, 4100, 'connect timeout', false);
    }, CONNECT_TIMEOUT_MS);
    this.timers.add(connectTimer);
    ws.addEventListener('message', (e: MessageEvent) => {
      this.lastHeardMs = localNow();
      if (typeof e.data !== 'string') return;
      let msg: RoomServerMessage;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === 'welcome') {
        welcomed = true;
        clearTimeout(connectTimer);
        this.timers.delete(connectTimer);
      }
      this.onMessage(msg);
      this.emit('message', msg);
    });
    ws.addEventListener('close', (e: CloseEvent) => this.onSocketGone(ws, e.code, e.reason, welcomed));
  }

  /**
   * The socket closed, or was abandoned as dead. A dead link may never deliver
   * its close event (no FIN, no RST), so the client does not wait for it.
   */
  private onSocketGone(ws: WebSocket, code: number, reason: string, welcomed: boolean): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.endLink(new RoomCommandError('disconnected', 'connection lost before the command was acknowledged'));
    this.pendingPings.clear();
    if (this.stopped || this.state === 'expired') return;
    if (code === 4000) return this.fail('expired', new RoomCommandError('expired', 'the room has expired'));
    if (code === 4001) return this.fail('closed', new RoomCommandError('unauthorized', reason || 'authentication failed'));
    if (code === 4002) return this.fail('closed', new RoomCommandError('replaced', reason || 'replaced by a newer connection'));
    if (!welcomed) void this.checkRoomThenRetry();
    else this.retry();
  }

  /** What a link leaves behind when it ends: the resync timer, and commands that will never be acknowledged. */
  private endLink(reason: RoomCommandError): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = null;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    this.pending.clear();
  }

  /** A socket that never got a welcome may mean the room is gone: ask once over HTTP before retrying. */
  private async checkRoomThenRetry(): Promise<void> {
    try {
      const res = await fetch(this.httpUrl(`/api/v1/rooms/${this.code}`), { signal: AbortSignal.timeout(5000) });
      if (res.status === 404) return this.fail('not_found', new RoomCommandError('not_found', 'no room with that code (it may have expired)'));
    } catch {
      // network down: keep retrying
    }
    this.retry();
  }

  private fail(state: ConnectionState, err: Error): void {
    this.stopped = true;
    this.setState(state);
    this.ready?.reject(err);
    this.ready = null;
  }

  private retry(): void {
    if (this.stopped) return;
    this.setState('reconnecting');
    const delay = backoffDelay(this.attempt++, this.backoff);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.open();
    }, delay);
    this.timers.add(t);
  }

  private onMessage(msg: RoomServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.anchor = msg.anchor;
        this.agent = msg.agent;
        this.emit('welcome', { code: msg.code, role: msg.role, anchor: msg.anchor });
        this.emit('agent', msg.agent);
        this.emit('anchor', { anchor: msg.anchor, cause: 'welcome' });
        void this.afterWelcome();
        return;
      case 'anchor':
        // Versions only grow; a stale frame (reordered across a reconnect) is ignored.
        if (this.anchor && msg.anchor.version < this.anchor.version) return;
        this.anchor = msg.anchor;
        this.emit('anchor', { anchor: msg.anchor, cause: msg.cause });
        return;
      case 'pong': {
        const t0 = this.pendingPings.get(msg.id);
        if (t0 === undefined) return;
        this.pendingPings.delete(msg.id);
        const s = this.sync.add(msg.t0, msg.t1, msg.t2, localNow());
        if (s) this.emit('sync', { offsetMs: this.sync.offsetMs, uncertaintyMs: this.sync.uncertaintyMs, rttMs: s.rttMs });
        return;
      }
      case 'ack': {
        if (msg.op === 'hello' && msg.role) this.role = msg.role;
        const p = msg.id ? this.pending.get(msg.id) : undefined;
        if (p) {
          clearTimeout(p.timer);
          this.pending.delete(msg.id!);
          p.resolve({ version: msg.version });
        }
        return;
      }
      case 'error': {
        const p = msg.id ? this.pending.get(msg.id) : undefined;
        if (p) {
          clearTimeout(p.timer);
          this.pending.delete(msg.id!);
          p.reject(new RoomCommandError(msg.code, msg.message));
        } else this.emit('error', { code: msg.code, message: msg.message });
        return;
      }
      case 'tick':
        this.emit('tick', msg);
        return;
      case 'agent':
        this.agent = msg.agent;
        this.emit('agent', msg.agent);
        return;
      case 'expired':
        this.emit('expired', { reason: msg.reason });
        this.fail('expired', new RoomCommandError('expired', msg.reason));
        return;
    }
  }

  private async afterWelcome(): Promise<void> {
    try {
      const role = this.opts.role ?? (this.opts.token ? 'controller' : 'viewer');
      if (role !== 'viewer') {
        const id = `c${++this.commandId}`;
        const ws = this.ws!;
        await new Promise<{ version: number }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new RoomCommandError('timeout', 'hello was not acknowledged')), this.opts.commandTimeoutMs);
          this.pending.set(id, { resolve, reject, timer });
          ws.send(JSON.stringify({ type: 'hello', role, token: this.opts.token, id }));
        });
      }
      this.attempt = 0;
      this.setState('open');
      // A reconnect keeps its samples: the estimate is valid at once, so no jump.
      await this.pingBurst(this.sync.synced ? this.opts.resyncPings : this.opts.joinPings);
      this.lastHeardMs = localNow();
      this.firstJoinMs ??= this.lastHeardMs;
      this.scheduleResync();
      this.ready?.resolve();
      this.ready = null;
    } catch (e) {
      if (e instanceof RoomCommandError && e.code === 'unauthorized') {
        this.fail('closed', e);
        try {
          this.ws?.close(1000, 'unauthorized');
        } catch {
          // closing anyway
        }
      }
    }
  }

  private scheduleResync(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    // The warm-up ends early once the minima have settled: on a quiet path
    // (a LAN, loopback) that is right after the join burst.
    const warming = this.firstJoinMs !== null && localNow() - this.firstJoinMs < this.opts.warmupMs && !this.sync.settled;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      // Pings are answered within a round trip: silence for several periods is a dead link.
      const ws = this.ws;
      if (!ws) return;
      if (localNow() - this.lastHeardMs > Math.max(DEAD_LINK_MS, 4 * this.opts.resyncEveryMs)) {
        abandon(ws, 'no answer from the room');
        this.onSocketGone(ws, 4100, 'no answer from the room', true);
        return;
      }
      // A slow room is not sent more: pings only pile up behind the unanswered ones.
      if (this.pendingPings.size < 2) void this.sendPings(this.opts.resyncPings);
      this.scheduleResync();
    }, warming ? this.opts.warmupEveryMs : this.opts.resyncEveryMs);
  }

  /** Sends n pings spaced apart (back-to-back pings would queue behind each other) and waits for their pongs. */
  private async pingBurst(n: number): Promise<void> {
    const mine = await this.sendPings(n);
    const deadline = Date.now() + PING_TIMEOUT_MS;
    while (mine.some((id) => this.pendingPings.has(id)) && Date.now() < deadline && this.ws) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Sends n pings spaced apart and returns their ids without waiting for the
   * pongs (resync pings are answered whenever they are). Pings unanswered
   * for PING_TIMEOUT_MS are forgotten here, so a lost one never counts as
   * outstanding for long.
   */
  private async sendPings(n: number): Promise<number[]> {
    const now = localNow();
    for (const [id, t0] of this.pendingPings) if (now - t0 > PING_TIMEOUT_MS) this.pendingPings.delete(id);
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const ws = this.ws;
      if (!ws || ws.readyState !== 1) break;
      const id = ++this.pingId;
      const t0 = localNow();
      this.pendingPings.set(id, t0);
      ids.push(id);
      ws.send(JSON.stringify({ type: 'ping', id, t0 }));
      if (i < n - 1) await new Promise((r) => setTimeout(r, this.opts.pingSpacingMs));
    }
    return ids;
  }
}
