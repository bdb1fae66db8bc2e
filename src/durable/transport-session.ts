import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import { numberVar } from '../worker/env.ts';
import {
  type Anchor,
  type ControlCommand,
  type Role,
  type RoomServerMessage,
  type TransportFrame,
  type AgentPresence,
  type ErrorCode,
  RoomClientMessage,
  ROOM_CLIENT_TYPES,
  MAX_ROOM_MESSAGE_BYTES,
  MAX_SCHEDULE_AHEAD_MS,
  TICK_HZ_MAX,
  TICK_HZ_MIN,
  RoomtoneError,
  describeIssues,
  frameAt,
  initialAnchor,
  nextBarMs,
  pause,
  play,
  resume,
  sampleAtBeats,
  seek,
  stop,
  tempo,
} from '../protocol/index.ts';
import { tokenMatches } from '../lib/tokens.ts';
import { TokenBucket } from '../lib/rate.ts';

/** Everything a room must not lose: one record in the object's own storage. */
interface RoomRecord {
  code: string;
  token_hash: string;
  created_ms: number;
  last_activity_ms: number;
  idle_ttl_s: number;
  anchor: Anchor;
  counters: Counters;
}

interface Counters {
  joins: number;
  messages_in: number;
  messages_out: number;
  state_changes: number;
  sync_requests: number;
  errors_sent: number;
}

/** Per-socket state that survives hibernation; small by design. */
interface SocketAttachment {
  role: Role;
  ticks: number | null;
  joined_ms: number;
  auth_failures: number;
}

export interface CreateRoomInput {
  code: string;
  token_hash: string;
  sample_rate: number;
  bpm: number;
  beats_per_bar: number;
  idle_ttl_s: number;
}

export type ControlResult = { ok: true; anchor: Anchor; frame: TransportFrame; changed: boolean } | { ok: false; code: ErrorCode; message: string };

export interface RoomMetrics {
  code: string;
  connections: { viewer: number; controller: number; agent: number; total: number; tick_streams: number };
  messages_in: number;
  messages_out: number;
  state_changes: number;
  sync_requests: number;
  joins: number;
  errors_sent: number;
  version: number;
  created_ms: number;
  uptime_s: number;
  expires_ms: number;
}

/** Sustained and burst message rates per socket: a join burst of pings fits, a flood does not. */
const SOCKET_RATE = { perSecond: 40, burst: 80 };
const MAX_AUTH_FAILURES = 5;
const COUNTER_FLUSH_MS = 10_000;
const CLOSE_EXPIRED = 4000;
const CLOSE_AUTH = 4001;

/**
 * One room: the transport anchor, its sockets and its expiry alarm.
 * Idle while music plays: nothing runs between messages unless a client asked
 * for a pushed tick stream, so the object hibernates.
 */
export class TransportSession extends DurableObject<Env> {
  private room: RoomRecord | null = null;
  private buckets = new WeakMap<WebSocket, TokenBucket>();
  private tickDue = new Map<WebSocket, number>();
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFlush = 0;
  private counterDirty = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.room = (await ctx.storage.get<RoomRecord>('room')) ?? null;
      this.lastFlush = Date.now();
      this.startTicksIfNeeded();
    });
  }

  // ---- RPC from the worker ----

  async create(input: CreateRoomInput): Promise<boolean> {
    if (this.room) return false;
    const now = Date.now();
    this.room = {
      code: input.code,
      token_hash: input.token_hash,
      created_ms: now,
      last_activity_ms: now,
      idle_ttl_s: input.idle_ttl_s,
      anchor: initialAnchor({ sample_rate: input.sample_rate, bpm: input.bpm, beats_per_bar: input.beats_per_bar, now }),
      counters: { joins: 0, messages_in: 0, messages_out: 0, state_changes: 0, sync_requests: 0, errors_sent: 0 },
    };
    await this.persist();
    await this.ctx.storage.setAlarm(now + input.idle_ttl_s * 1000);
    return true;
  }

  async exists(): Promise<boolean> {
    return this.room !== null;
  }

  async summary(): Promise<{ code: string; anchor: Anchor; agent: AgentPresence; server_ms: number } | null> {
    if (!this.room) return null;
    return { code: this.room.code, anchor: this.room.anchor, agent: this.agentPresence(), server_ms: Date.now() };
  }

  async transport(): Promise<TransportFrame | null> {
    return this.room ? frameAt(this.room.anchor, Date.now()) : null;
  }

  async metrics(): Promise<RoomMetrics | null> {
    const room = this.room;
    if (!room) return null;
    const connections = { viewer: 0, controller: 0, agent: 0, total: 0, tick_streams: 0 };
    for (const ws of this.ctx.getWebSockets()) {
      const a = this.attachment(ws);
      if (!a) continue;
      connections[a.role]++;
      connections.total++;
      if (a.ticks) connections.tick_streams++;
    }
    const now = Date.now();
    return {
      code: room.code,
      connections,
      ...room.counters,
      version: room.anchor.version,
      created_ms: room.created_ms,
      uptime_s: (now - room.created_ms) / 1000,
      expires_ms: room.last_activity_ms + room.idle_ttl_s * 1000,
    };
  }

  async control(token: string | null, command: ControlCommand): Promise<ControlResult> {
    if (!this.room) return { ok: false, code: 'not_found', message: 'no such room' };
    if (!(await tokenMatches(token, this.room.token_hash))) {
      return { ok: false, code: 'unauthorized', message: 'a valid control token is required' };
    }
    try {
      const { anchor, changed } = await this.applyControl(command);
      return { ok: true, anchor, frame: frameAt(anchor, Date.now()), changed };
    } catch (e) {
      if (e instanceof RoomtoneError) return { ok: false, code: e.code, message: e.message };
      throw e;
    }
  }

  // ---- WebSocket entry points: thin, then a named hook ----

  async fetch(request: Request): Promise<Response> {
    if (!this.room) return Response.json({ error: { code: 'not_found', message: 'no such room' } }, { status: 404 });
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json({ error: { code: 'bad_request', message: 'expected a WebSocket upgrade' } }, { status: 426 });
    }
    const ticksParam = new URL(request.url).searchParams.get('ticks');
    let ticks: number | null = null;
    if (ticksParam !== null) {
      ticks = Number(ticksParam);
      if (!Number.isInteger(ticks) || ticks < TICK_HZ_MIN || ticks > TICK_HZ_MAX) {
        return Response.json({ error: { code: 'bad_request', message: `ticks must be an integer from ${TICK_HZ_MIN} to ${TICK_HZ_MAX}` } }, { status: 400 });
      }
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ role: 'viewer', ticks, joined_ms: Date.now(), auth_failures: 0 } satisfies SocketAttachment);
    await this.onConnect(server, ticks);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const received = Date.now();
    if (!this.room) {
      this.sendError(ws, 'gone', 'this room has expired');
      ws.close(CLOSE_EXPIRED, 'room expired');
      return;
    }
    await this.onMessage(ws, message, received);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onClose(ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    this.onClose(ws);
  }

  async alarm(): Promise<void> {
    const room = this.room;
    if (!room) return;
    const expiresAt = room.last_activity_ms + room.idle_ttl_s * 1000;
    if (Date.now() < expiresAt) {
      await this.ctx.storage.setAlarm(expiresAt);
      return;
    }
    await this.expire(`no activity for ${room.idle_ttl_s} s`);
  }

  // ---- hooks ----

  private async onConnect(ws: WebSocket, ticks: number | null): Promise<void> {
    const room = this.room!;
    room.counters.joins++;
    room.last_activity_ms = Date.now();
    this.send(ws, {
      type: 'welcome',
      code: room.code,
      role: 'viewer',
      anchor: room.anchor,
      agent: this.agentPresence(),
      server_ms: Date.now(),
      ticks,
    });
    if (ticks) this.startTicksIfNeeded();
    await this.persist();
  }

  private async onMessage(ws: WebSocket, message: string | ArrayBuffer, received: number): Promise<void> {
    const room = this.room!;
    room.counters.messages_in++;
    this.counterDirty = true;
    let bucket = this.buckets.get(ws);
    if (!bucket) this.buckets.set(ws, (bucket = new TokenBucket(SOCKET_RATE.perSecond, SOCKET_RATE.burst, received)));
    if (!bucket.take(received)) {
      this.sendError(ws, 'rate_limited', `more than ${SOCKET_RATE.perSecond} messages per second; message dropped`);
      return this.flushCountersSoon();
    }
    if (typeof message !== 'string') {
      this.sendError(ws, 'bad_request', 'binary frames are not accepted on a room socket');
      return this.flushCountersSoon();
    }
    if (message.length > MAX_ROOM_MESSAGE_BYTES) {
      this.sendError(ws, 'too_large', `messages are limited to ${MAX_ROOM_MESSAGE_BYTES} bytes`);
      return this.flushCountersSoon();
    }
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      this.sendError(ws, 'bad_json', 'message is not valid JSON');
      return this.flushCountersSoon();
    }
    const parsed = RoomClientMessage.safeParse(raw);
    if (!parsed.success) {
      const type = (raw as { type?: unknown } | null)?.type;
      const id = typeof (raw as { id?: unknown } | null)?.id === 'string' ? ((raw as { id: string }).id) : null;
      if (typeof type !== 'string' || !(ROOM_CLIENT_TYPES as readonly string[]).includes(type)) {
        this.sendError(ws, 'unknown_type', `unknown message type ${JSON.stringify(type ?? null).slice(0, 40)}; expected one of ${ROOM_CLIENT_TYPES.join(', ')}`, id);
      } else {
        this.sendError(ws, 'bad_request', `invalid ${type}: ${describeIssues(parsed.error).join('; ')}`, id);
      }
      return this.flushCountersSoon();
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'ping':
        room.counters.sync_requests++;
        this.send(ws, { type: 'pong', id: msg.id, t0: msg.t0, t1: received, t2: Date.now() });
        return this.flushCountersSoon();
      case 'hello':
        return this.onHello(ws, msg.role ?? 'viewer', msg.token, msg.id ?? null);
      default: {
        const att = this.attachment(ws);
        const id = msg.id ?? null;
        if (!att || att.role === 'viewer') {
          this.sendError(ws, 'forbidden', 'viewers cannot control the transport; send {"type":"hello","role":"controller","token":…} first', id);
          return this.flushCountersSoon();
        }
        const { type, id: _id, ...args } = msg;
        try {
          const { anchor } = await this.applyControl({ op: type, ...args } as ControlCommand);
          this.send(ws, { type: 'ack', id, op: type, version: anchor.version });
        } catch (e) {
          if (!(e instanceof RoomtoneError)) throw e;
          this.sendError(ws, e.code, e.message, id);
        }
        return this.flushCountersSoon();
      }
    }
  }

  private async onHello(ws: WebSocket, role: Role, token: string | undefined, id: string | null): Promise<void> {
    const att = this.attachment(ws)!;
    if (role !== 'viewer' && !(await tokenMatches(token, this.room!.token_hash))) {
      att.auth_failures++;
      ws.serializeAttachment(att);
      this.sendError(ws, 'unauthorized', `the ${role} role needs this room's control token`, id);
      if (att.auth_failures >= MAX_AUTH_FAILURES) ws.close(CLOSE_AUTH, 'too many failed authentications');
      return this.flushCountersSoon();
    }
    att.role = role;
    ws.serializeAttachment(att);
    this.send(ws, { type: 'ack', id, op: 'hello', version: this.room!.anchor.version, role });
    return this.flushCountersSoon();
  }

  private onClose(ws: WebSocket): void {
    this.tickDue.delete(ws);
    this.buckets.delete(ws);
    this.startTicksIfNeeded();
  }

  // ---- transport ----

  private async applyControl(cmd: ControlCommand): Promise<{ anchor: Anchor; changed: boolean }> {
    const room = this.room!;
    const now = Date.now();
    const a = room.anchor;
    let next: Anchor;
    switch (cmd.op) {
      case 'play': {
        let start = now;
        if (cmd.at === 'next_bar') start = nextBarMs(a, now);
        else if (typeof cmd.at === 'number') {
          if (cmd.at > now + MAX_SCHEDULE_AHEAD_MS) throw new RoomtoneError('bad_request', `at is more than ${MAX_SCHEDULE_AHEAD_MS / 1000} s in the future`);
          if (cmd.at < now - 10_000) throw new RoomtoneError('bad_request', 'at is more than 10 s in the past');
          start = cmd.at;
        }
        // A start given slightly in the past is honoured as given: everyone
        // shows the playhead as if it had started then.
        next = a.status === 'playing' ? a : { ...play(a, now, start), server_ms: start };
        break;
      }
      case 'pause':
        next = pause(a, now);
        break;
      case 'resume':
        next = resume(a, now);
        break;
      case 'stop':
        next = stop(a, now);
        break;
      case 'seek': {
        const target = cmd.seconds !== undefined ? cmd.seconds * a.sample_rate : cmd.samples !== undefined ? cmd.samples : sampleAtBeats(a, cmd.beats!);
        if (target < 0) throw new RoomtoneError('bad_request', 'that beat lies before the start of the timeline');
        next = seek(a, now, target);
        break;
      }
      case 'tempo':
        next = tempo(a, now, cmd.bpm, cmd.beats_per_bar);
        break;
    }
    room.last_activity_ms = now;
    const changed = next !== a;
    if (changed) {
      room.anchor = next;
      room.counters.state_changes++;
      this.broadcast({ type: 'anchor', anchor: next, cause: cmd.op });
    }
    await this.persist();
    return { anchor: next, changed };
  }

  private agentPresence(): AgentPresence {
    for (const ws of this.ctx.getWebSockets()) {
      const a = this.attachment(ws);
      if (a?.role === 'agent') return { connected: true, since_ms: a.joined_ms };
    }
    return { connected: false, since_ms: null };
  }

  // ---- tick streams: the only timer, and only while someone asked ----

  private startTicksIfNeeded(): void {
    const tickers = this.ctx.getWebSockets().filter((ws) => this.attachment(ws)?.ticks);
    if (tickers.length === 0 || !this.room) {
      if (this.tickTimer) clearTimeout(this.tickTimer);
      this.tickTimer = null;
      this.tickDue.clear();
      return;
    }
    if (this.tickTimer) return;
    const loop = () => {
      this.tickTimer = null;
      const room = this.room;
      if (!room) return;
      const now = Date.now();
      let nextWake = Infinity;
      let frame: string | null = null;
      let live = 0;
      for (const ws of this.ctx.getWebSockets()) {
        const hz = this.attachment(ws)?.ticks;
        if (!hz) continue;
        live++;
        const period = 1000 / hz;
        let due = this.tickDue.get(ws) ?? now;
        if (now >= due) {
          frame ??= JSON.stringify({ type: 'tick', ...frameAt(room.anchor, now) } satisfies RoomServerMessage);
          try {
            ws.send(frame);
            room.counters.messages_out++;
          } catch {
            // closing; webSocketClose cleans up
          }
          due += period;
          if (due < now) due = now + period; // fell behind: skip rather than burst
          this.tickDue.set(ws, due);
        }
        nextWake = Math.min(nextWake, due);
      }
      if (live === 0) return;
      this.tickTimer = setTimeout(loop, Math.max(1, nextWake - Date.now()));
    };
    this.tickTimer = setTimeout(loop, 0);
  }

  // ---- plumbing ----

  private attachment(ws: WebSocket): SocketAttachment | null {
    return (ws.deserializeAttachment() as SocketAttachment | null) ?? null;
  }

  private send(ws: WebSocket, msg: RoomServerMessage): void {
    try {
      ws.send(JSON.stringify(msg));
      if (this.room) this.room.counters.messages_out++;
    } catch {
      // the socket is closing; its close handler cleans up
    }
  }

  private sendError(ws: WebSocket, code: ErrorCode, message: string, id: string | null = null): void {
    if (this.room) this.room.counters.errors_sent++;
    this.send(ws, { type: 'error', code, message, id });
  }

  private broadcast(msg: RoomServerMessage): void {
    const text = JSON.stringify(msg);
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
        n++;
      } catch {
        // closing
      }
    }
    if (this.room) this.room.counters.messages_out += n;
  }

  private async persist(): Promise<void> {
    if (!this.room) return;
    this.counterDirty = false;
    this.lastFlush = Date.now();
    await this.ctx.storage.put('room', this.room);
  }

  /** Counters are written with state changes, and at most every few seconds otherwise. */
  private async flushCountersSoon(): Promise<void> {
    if (this.counterDirty && Date.now() - this.lastFlush > COUNTER_FLUSH_MS) await this.persist();
  }

  private async expire(reason: string): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) {
      this.send(ws, { type: 'expired', reason });
      try {
        ws.close(CLOSE_EXPIRED, 'room expired');
      } catch {
        // already closed
      }
    }
    this.room = null;
    this.startTicksIfNeeded();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  static defaultIdleTtlS(env: Env): number {
    return numberVar(env.ROOM_IDLE_TTL_S, 86_400);
  }
}
