import { DurableObject } from 'cloudflare:workers';
import { holdsLeases, leaseTags, releaseLease } from './connection-lease.ts';
import type { Env } from '../worker/env.ts';
import { numberVar } from '../lib/env-vars.ts';
import {
  type Anchor,
  type ControlCommand,
  type Role,
  type RoomServerMessage,
  type TransportFrame,
  type AgentPresence,
  type ErrorCode,
  type AgentStateMessage,
  RoomClientMessage,
  ROOM_CLIENT_TYPES,
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
  sampleAt,
  sampleAtBeats,
  beatsAtSample,
  seek,
  stop,
  tempo,
} from '../protocol/index.ts';
import { tokenMatches } from '../lib/tokens.ts';
import type { TokenBucket } from '../lib/rate.ts';
import { readRoomFrame } from './room-frames.ts';
import { ClockLineFit, fitAtRate, lineSampleAt, type ClockLine } from './clock-fit.ts';
import { relayName } from './room-relay.ts';
import { sendToAll } from '../lib/sockets.ts';

/** Everything a room must not lose: one record in the object's own storage. */
interface RoomRecord {
  code: string;
  token_hash: string;
  created_ms: number;
  last_activity_ms: number;
  idle_ttl_s: number;
  anchor: Anchor;
  counters: Counters;
  /** The attached device's clock rate against server time (1 + drift), learnt from its reports. */
  device_rate_ratio?: number;
  /** Viewers held by each relay object of this room, by relay index (see room-relay.ts). */
  relay_loads?: number[];
}

export type ViewerPlacement = { target: 'room' } | { target: 'relay'; name: string };

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
  connections: { viewer: number; controller: number; agent: number; total: number; tick_streams: number; relayed_viewers: number; relays: number };
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

const MAX_AUTH_FAILURES = 5;
const COUNTER_FLUSH_MS = 10_000;
const COUNTER_ALARM_DELAY_MS = 2000;
const CLOSE_EXPIRED = 4000;
const CLOSE_AUTH = 4001;
const CLOSE_REPLACED = 4002;
/** The agent went silent: not final, a live agent reconnects. */
const CLOSE_SILENT = 4004;

/** How far the published line may stray from the agent's clock before a correction. */
const CORRECTION_TOLERANCE_MS = 0.5;
/** Corrections are at most this frequent unless the error is large. */
const CORRECTION_MIN_INTERVAL_MS = 1000;
const CORRECTION_URGENT_MS = 5;
/** The rate is estimated only once the reports span this long; before, only the position. */
const RATE_FIT_MIN_SPAN_MS = 5000;
/** A fitted rate further than this from nominal is a broken report stream, not a crystal. */
const MAX_DRIFT_RATIO = 0.005;
const AGENT_CONFIRM_TIMEOUT_MS = 3000;

/**
 * One room: the transport anchor, its sockets and its expiry alarm.
 * Idle while music plays: nothing runs between messages unless a client asked
 * for a pushed tick stream, so the object hibernates.
 */
export class TransportSession extends DurableObject<Env> {
  private room: RoomRecord | null = null;
  private buckets = new WeakMap<WebSocket, TokenBucket>();
  /** Deserialised attachments: the tick loop and presence checks read them for every socket. */
  private attachments = new WeakMap<WebSocket, SocketAttachment>();
  private tickDue = new Map<WebSocket, number>();
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFlush = 0;
  private counterDirty = false;
  private flushAlarmSet = false;
  private clockFit: ClockLineFit | null = null;
  /**
   * When the agent was last heard (any message: it reports its clock 20 times
   * a second and pings). In memory: after a wake the agent gets a fresh
   * allowance, since a hibernated room heard nothing by design.
   */
  private agentHeardMs = Date.now();
  private agentWatch: ReturnType<typeof setInterval> | null = null;
  /** Server time of the last real discontinuity; corrections do not move it. */
  private segmentStartMs: number | null = null;
  private lastCorrectionMs = 0;
  private forwardSeq = 0;
  private forwarded = new Map<string, { resolve: (m: AgentStateMessage) => void; reject: (e: RoomtoneError) => void; timer: ReturnType<typeof setTimeout> }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.room = (await ctx.storage.get<RoomRecord>('room')) ?? null;
      this.lastFlush = Date.now();
      this.startTicksIfNeeded();
      // Woken with an agent socket held (a deploy, an eviction): watch it from now, heard or not.
      if (this.agentSocket()) this.watchAgent();
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
    const loads = room.relay_loads ?? [];
    const relayed = loads.reduce((a, b) => a + b, 0);
    const connections = { viewer: relayed, controller: 0, agent: 0, total: relayed, tick_streams: 0, relayed_viewers: relayed, relays: loads.length };
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

  /** Whether a control token is this room's; checked before a body is read, so a wrong token is always 401. */
  async authorize(token: string | null): Promise<boolean> {
    return this.room !== null && (await tokenMatches(token, this.room.token_hash));
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

  /**
   * Where a new viewer should connect. The room holds viewers itself up to
   * ROOM_VIEWER_CAPACITY; past that it spreads them over relay objects of
   * RELAY_CAPACITY each, which it seeds with the current state and then sends
   * every change to once.
   */
  async assign(): Promise<ViewerPlacement> {
    const room = this.room;
    if (!room) return { target: 'room' };
    const own = numberVar(this.env.ROOM_VIEWER_CAPACITY, 1000);
    if (this.ctx.getWebSockets().length < own) return { target: 'room' };
    const capacity = numberVar(this.env.RELAY_CAPACITY, 1000);
    const loads = (room.relay_loads ??= []);
    let index = loads.findIndex((n) => n < capacity);
    if (index < 0) {
      index = loads.length;
      loads.push(0);
      await this.relay(index).init({ code: room.code, index, anchor: room.anchor, agent: this.agentPresence() });
    }
    // Counted at once, so a burst of joins spreads out; the relay reports its real count as sockets come and go.
    loads[index]++;
    await this.persist();
    return { target: 'relay', name: relayName(room.code, index) };
  }

  async relayLoad(index: number, count: number): Promise<void> {
    const loads = this.room?.relay_loads;
    if (!loads || index < 0 || index >= loads.length) return;
    loads[index] = count;
    this.counterDirty = true;
    await this.flushCountersSoon();
  }

  private relay(index: number) {
    return this.env.RELAYS.get(this.env.RELAYS.idFromName(relayName(this.room!.code, index)));
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
    this.ctx.acceptWebSocket(server, leaseTags(request));
    this.setAttachment(server, { role: 'viewer', ticks, joined_ms: Date.now(), auth_failures: 0 });
    await this.onConnect(server, ticks);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const received = Date.now();
    if (this.attachment(ws)?.role === 'agent') {
      this.agentHeardMs = received;
      this.watchAgent();
    }
    if (!this.room) {
      this.sendError(ws, 'gone', 'this room has expired');
      ws.close(CLOSE_EXPIRED, 'room expired');
      return;
    }
    await this.onMessage(ws, message, received);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    this.onClose(ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    this.onClose(ws);
  }

  async holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]> {
    return holdsLeases(this.ctx, limiterId, leases);
  }

  /** One alarm serves two jobs: flushing counters soon after they change, and expiring the room when idle. */
  async alarm(): Promise<void> {
    const room = this.room;
    if (!room) return;
    this.flushAlarmSet = false;
    if (this.counterDirty) await this.persist();
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
    const frame = readRoomFrame(this.buckets, ws, message, received);
    if (!frame.ok) {
      this.sendError(ws, frame.code, frame.message);
      return this.flushCountersSoon();
    }
    const raw = frame.raw;
    const parsed = RoomClientMessage.safeParse(raw);
    if (!parsed.success) {
      const type = (raw as { type?: unknown } | null)?.type;
      const id = typeof (raw as { id?: unknown } | null)?.id === 'string' ? ((raw as { id: string }).id) : null;
      if (typeof type !== 'string' || !(ROOM_CLIENT_TYPES as readonly string[]).includes(type)) {
        // The offending value is not echoed: it may be something the client should not see again in a log.
        this.sendError(ws, 'unknown_type', `unknown message type; expected one of ${ROOM_CLIENT_TYPES.join(', ')}`, id);
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
      case 'clock':
      case 'agent_state':
        if (this.attachment(ws)?.role !== 'agent') {
          this.sendError(ws, 'forbidden', `only the agent sends ${msg.type}`);
          return this.flushCountersSoon();
        }
        if (msg.type === 'clock') return this.onAgentClock(msg.sample, msg.server_ms);
        return this.onAgentState(msg);
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
      this.setAttachment(ws, att);
      this.sendError(ws, 'unauthorized', `the ${role} role needs this room's control token`, id);
      if (att.auth_failures >= MAX_AUTH_FAILURES) ws.close(CLOSE_AUTH, 'too many failed authentications');
      return this.flushCountersSoon();
    }
    if (role === 'agent') {
      // The newest agent wins: an old connection is usually a half-dead socket
      // of the same agent after a network change. The replaced one is told why
      // and does not reconnect.
      for (const other of this.ctx.getWebSockets()) {
        if (other !== ws && this.attachment(other)?.role === 'agent') {
          this.sendError(other, 'conflict', 'replaced by a newer agent connection for this room');
          const o = this.attachment(other)!;
          o.role = 'viewer';
          this.setAttachment(other, o);
          try {
            other.close(CLOSE_REPLACED, 'replaced by a newer agent');
          } catch {
            // already closed
          }
        }
      }
      att.joined_ms = Date.now();
      this.clockFit = null;
      this.agentHeardMs = Date.now();
    }
    att.role = role;
    this.setAttachment(ws, att);
    this.send(ws, { type: 'ack', id, op: 'hello', version: this.room!.anchor.version, role });
    if (role === 'agent') {
      this.room!.last_activity_ms = Date.now();
      this.broadcast({ type: 'agent', agent: this.agentPresence() });
      this.watchAgent();
    }
    return this.flushCountersSoon();
  }

  private onClose(ws: WebSocket): void {
    this.tickDue.delete(ws);
    this.buckets.delete(ws);
    this.startTicksIfNeeded();
    if (this.attachment(ws)?.role === 'agent' && this.room) this.detachAgent(ws);
  }

  /** The agent is gone (closed, or silent): the room runs its own transport until one attaches again. */
  private detachAgent(ws: WebSocket): void {
    const att = this.attachment(ws)!;
    att.role = 'viewer';
    try {
      this.setAttachment(ws, att);
    } catch {
      // a closed socket takes no attachment; the memory copy is what counts
      this.attachments.set(ws, att);
    }
    this.clockFit = null;
    for (const [, f] of this.forwarded) {
      clearTimeout(f.timer);
      f.reject(new RoomtoneError('unavailable', 'the agent disconnected before confirming the command'));
    }
    this.forwarded.clear();
    // Viewers keep extrapolating the last anchor; they only learn the agent is gone.
    this.broadcast({ type: 'agent', agent: this.agentPresence() });
  }

  private agentSilentMs(): number {
    return numberVar(this.env.AGENT_SILENT_S, 10) * 1000;
  }

  /**
   * A dead link closes nothing: without this the room would forward control
   * to an agent that cannot hear it, and show it connected, until the agent's
   * own watchdog reconnects it (or for good, if it never comes back).
   */
  private watchAgent(): void {
    if (this.agentWatch) return;
    this.agentWatch = setInterval(() => {
      const agent = this.agentSocket();
      if (!agent) {
        clearInterval(this.agentWatch!);
        this.agentWatch = null;
        return;
      }
      this.dropAgentIfSilent(agent);
    }, 1000);
  }

  /** True if the agent was silent too long and has been let go. */
  private dropAgentIfSilent(agent: WebSocket): boolean {
    const silent = Date.now() - this.agentHeardMs;
    if (silent <= this.agentSilentMs()) return false;
    this.detachAgent(agent);
    try {
      agent.close(CLOSE_SILENT, `no message from the agent for ${Math.round(silent / 1000)} s`);
    } catch {
      // already closed
    }
    return true;
  }

  // ---- transport ----

  private async applyControl(cmd: ControlCommand): Promise<{ anchor: Anchor; changed: boolean }> {
    const agent = this.agentSocket();
    if (agent && !this.dropAgentIfSilent(agent)) return this.forwardToAgent(agent, cmd);
    const room = this.room!;
    const now = Date.now();
    const a = room.anchor;
    let next: Anchor;
    switch (cmd.op) {
      case 'play': {
        const start = startTime(a, now, cmd.at) ?? now;
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
      case 'seek':
        next = seek(a, now, seekTarget(a, cmd));
        break;
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

  // ---- the agent: its clock is the truth while attached ----

  private agentSocket(): WebSocket | null {
    for (const ws of this.ctx.getWebSockets()) if (this.attachment(ws)?.role === 'agent') return ws;
    return null;
  }

  /**
   * Sends a controller's command to the agent in absolute terms (server time
   * for starts, samples for seeks) and resolves when the agent reports the
   * state it applied.
   */
  private async forwardToAgent(agent: WebSocket, cmd: ControlCommand): Promise<{ anchor: Anchor; changed: boolean }> {
    const a = this.room!.anchor;
    const now = Date.now();
    let command: ControlCommand = cmd;
    if (cmd.op === 'play') {
      const at = startTime(a, now, cmd.at);
      command = at === undefined ? { op: 'play' } : { op: 'play', at };
    } else if (cmd.op === 'seek') command = { op: 'seek', samples: Math.round(seekTarget(a, cmd)) };
    const id = `f${++this.forwardSeq}`;
    const reply = new Promise<AgentStateMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.forwarded.delete(id);
        reject(new RoomtoneError('unavailable', 'the agent did not confirm the command in time'));
      }, AGENT_CONFIRM_TIMEOUT_MS);
      this.forwarded.set(id, { resolve, reject, timer });
    });
    this.send(agent, { type: 'control', id, command });
    const state = await reply;
    if (state.error) throw new RoomtoneError('conflict', `the agent refused ${cmd.op}: ${state.error}`);
    const anchor = this.room!.anchor;
    return { anchor, changed: anchor.version !== a.version };
  }

  private async onAgentState(m: AgentStateMessage): Promise<void> {
    const room = this.room!;
    const a = room.anchor;
    const pending = m.id ? this.forwarded.get(m.id) : undefined;
    let next = a;
    if (!m.error) {
      const tempoChanged = m.bpm !== a.bpm || m.beats_per_bar !== a.beats_per_bar;
      const ratio = room.device_rate_ratio ?? 1;
      const candidate: Anchor = {
        ...a,
        status: m.status,
        server_ms: m.server_ms,
        sample: m.sample,
        rate: m.status === 'playing' ? a.sample_rate * ratio : 0,
        bpm: m.bpm,
        beats_per_bar: m.beats_per_bar,
        // A tempo change keeps the beat position continuous where it happened.
        ...(tempoChanged ? { beat_origin_sample: m.sample, beat_origin_beat: beatsAtSample(a, m.sample) } : {}),
        version: a.version + 1,
      };
      const same =
        m.status === a.status &&
        !tempoChanged &&
        Math.abs(sampleAt(a, m.server_ms) - m.sample) / a.sample_rate * 1000 <= CORRECTION_TOLERANCE_MS;
      // On (re)attach an agent that agrees with the published line changes nothing: no jump, no new version.
      if (!(same && (m.cause === 'attach' || (pending === undefined && m.cause === 'local')))) next = candidate;
    }
    room.last_activity_ms = Date.now();
    if (next !== a) {
      room.anchor = next;
      room.counters.state_changes++;
      this.clockFit = null;
      this.segmentStartMs = next.server_ms;
      this.lastCorrectionMs = Date.now();
      this.broadcast({ type: 'anchor', anchor: next, cause: m.cause });
    }
    await this.persist();
    if (pending && m.id) {
      clearTimeout(pending.timer);
      this.forwarded.delete(m.id);
      pending.resolve(m);
    }
  }

  /**
   * A report of the agent's clock. The room fits a line through recent reports
   * and republishes only when the published line would be off by more than the
   * tolerance, so viewers follow the device, drift included, with about one
   * correction a second at most.
   */
  private async onAgentClock(sample: number, serverMs: number): Promise<void> {
    const room = this.room!;
    const a = room.anchor;
    // Stopped, or a report from before the last discontinuity (a correction is not one).
    if (a.status !== 'playing' || serverMs < (this.segmentStartMs ?? a.server_ms)) return;
    // A playing agent is activity: its room does not expire under it.
    room.last_activity_ms = Date.now();
    this.clockFit ??= new ClockLineFit(a.sample_rate);
    this.clockFit.add({ serverMs, sample });
    const fit = this.clockFit;
    let line: ClockLine | null;
    if (fit.spanMs >= RATE_FIT_MIN_SPAN_MS) {
      line = fit.fit();
      if (line && Math.abs(line.rate / a.sample_rate - 1) > MAX_DRIFT_RATIO) line = fitAtRate(fit, a.rate);
    } else line = fitAtRate(fit, a.rate);
    if (!line) return;
    const now = Date.now();
    const errNow = ((lineSampleAt(line, now) - sampleAt(a, now)) / a.sample_rate) * 1000;
    const errAhead = ((lineSampleAt(line, now + 1000) - sampleAt(a, now + 1000)) / a.sample_rate) * 1000;
    const worst = Math.max(Math.abs(errNow), Math.abs(errAhead));
    if (worst <= CORRECTION_TOLERANCE_MS) return;
    if (worst < CORRECTION_URGENT_MS && now - this.lastCorrectionMs < CORRECTION_MIN_INTERVAL_MS) return;
    this.lastCorrectionMs = now;
    const next: Anchor = { ...a, server_ms: now, sample: lineSampleAt(line, now), rate: line.rate, version: a.version + 1 };
    room.anchor = next;
    room.device_rate_ratio = line.rate / a.sample_rate;
    room.counters.state_changes++;
    this.broadcast({ type: 'anchor', anchor: next, cause: 'correction' });
    await this.persist();
  }

  private agentPresence(): AgentPresence {
    const ws = this.agentSocket();
    return ws ? { connected: true, since_ms: this.attachment(ws)!.joined_ms } : { connected: false, since_ms: null };
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

  /** Read once per socket and instance; every change goes through setAttachment. */
  private attachment(ws: WebSocket): SocketAttachment | null {
    let a = this.attachments.get(ws);
    if (a === undefined) {
      a = (ws.deserializeAttachment() as SocketAttachment | null) ?? undefined;
      if (a) this.attachments.set(ws, a);
    }
    return a ?? null;
  }

  private setAttachment(ws: WebSocket, a: SocketAttachment): void {
    this.attachments.set(ws, a);
    ws.serializeAttachment(a);
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
    const loads = this.room?.relay_loads ?? [];
    const anchor = msg.type === 'anchor' ? msg.anchor : null;
    const agent = msg.type === 'agent' ? msg.agent : null;
    for (let i = 0; i < loads.length; i++) {
      // Each relay gets the change once and fans it out to its own viewers.
      this.relay(i)
        .publish(text, anchor, agent)
        .catch(() => {});
    }
    const n = sendToAll(this.ctx.getWebSockets(), text);
    if (this.room) this.room.counters.messages_out += n;
  }

  private async persist(): Promise<void> {
    if (!this.room) return;
    this.counterDirty = false;
    this.lastFlush = Date.now();
    await this.ctx.storage.put('room', this.room);
  }

  /**
   * Counters are written with state changes, and otherwise by an alarm a few
   * seconds after they change, so a room that hibernates keeps its metrics
   * without a storage write per message.
   */
  private async flushCountersSoon(): Promise<void> {
    if (!this.counterDirty || this.flushAlarmSet || !this.room) return;
    if (Date.now() - this.lastFlush > COUNTER_FLUSH_MS) return this.persist();
    this.flushAlarmSet = true;
    const room = this.room;
    const expiresAt = room.last_activity_ms + room.idle_ttl_s * 1000;
    await this.ctx.storage.setAlarm(Math.min(expiresAt, Date.now() + COUNTER_ALARM_DELAY_MS));
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
    const relays = this.room?.relay_loads?.length ?? 0;
    const expired = JSON.stringify({ type: 'expired', reason } satisfies RoomServerMessage);
    await Promise.allSettled(Array.from({ length: relays }, (_, i) => this.relay(i).shutdown(expired)));
    this.room = null;
    this.startTicksIfNeeded();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  static defaultIdleTtlS(env: Env): number {
    return numberVar(env.ROOM_IDLE_TTL_S, 86_400);
  }
}

/** A play command's start as a server time (undefined for "now"), validated against the schedule window. */
function startTime(a: Anchor, now: number, at: 'now' | 'next_bar' | number | undefined): number | undefined {
  if (at === 'next_bar') return nextBarMs(a, now);
  if (typeof at !== 'number') return undefined;
  if (at > now + MAX_SCHEDULE_AHEAD_MS) throw new RoomtoneError('bad_request', `at is more than ${MAX_SCHEDULE_AHEAD_MS / 1000} s in the future`);
  if (at < now - 10_000) throw new RoomtoneError('bad_request', 'at is more than 10 s in the past');
  return at;
}

/** A seek in seconds, samples or beats (on the room's grid), as samples. */
function seekTarget(a: Anchor, cmd: Extract<ControlCommand, { op: 'seek' }>): number {
  const target = cmd.seconds !== undefined ? cmd.seconds * a.sample_rate : cmd.samples !== undefined ? cmd.samples : sampleAtBeats(a, cmd.beats!);
  if (target < 0) throw new RoomtoneError('bad_request', 'that beat lies before the start of the timeline');
  return target;
}
