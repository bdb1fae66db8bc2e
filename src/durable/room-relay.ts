import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import {
  type AgentPresence,
  type Anchor,
  type RoomServerMessage,
  type ErrorCode,
  RoomClientMessage,
} from '../protocol/index.ts';
import type { TokenBucket } from '../lib/rate.ts';
import { readRoomFrame } from './room-frames.ts';
import { holdsLeases, leaseTags, releaseLease } from './connection-lease.ts';
import { sendToAll } from '../lib/sockets.ts';

/** What a relay needs to greet a viewer without asking the room. */
export interface RelayState {
  code: string;
  index: number;
  anchor: Anchor;
  agent: AgentPresence;
}


/**
 * One branch of a crowded room: holds viewers the room itself has no room
 * for. The room sends each change here once (RPC `publish`), and the relay
 * fans it out to its own sockets, so the room's work per change grows with
 * the number of relays, not of viewers. Viewers' clock-sync pings are answered
 * here too. Controllers and the agent always connect to the room itself.
 */
export class RoomRelay extends DurableObject<Env> {
  private state: RelayState | null = null;
  private buckets = new WeakMap<WebSocket, TokenBucket>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.state = (await ctx.storage.get<RelayState>('state')) ?? null;
    });
  }

  // ---- RPC from the room ----

  async init(state: RelayState): Promise<void> {
    this.state = state;
    await this.ctx.storage.put('state', state);
  }

  /** A message the room broadcast; anchors and presence are also kept for later joiners. */
  async publish(text: string, anchor: Anchor | null, agent: AgentPresence | null): Promise<number> {
    if (!this.state) return 0;
    if (anchor) this.state.anchor = anchor;
    if (agent) this.state.agent = agent;
    if (anchor || agent) await this.ctx.storage.put('state', this.state);
    return sendToAll(this.ctx.getWebSockets(), text);
  }

  async load(): Promise<number> {
    return this.ctx.getWebSockets().length;
  }

  /** The room expired: tell everyone, close, forget. */
  async shutdown(text: string): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
        ws.close(4000, 'room expired');
      } catch {
        // closing
      }
    }
    this.state = null;
    await this.ctx.storage.deleteAll();
  }

  // ---- sockets ----

  async fetch(request: Request): Promise<Response> {
    if (!this.state) return Response.json({ error: { code: 'not_found', message: 'no such room' } }, { status: 404 });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, leaseTags(request));
    this.send(server, {
      type: 'welcome',
      code: this.state.code,
      role: 'viewer',
      anchor: this.state.anchor,
      agent: this.state.agent,
      server_ms: Date.now(),
      ticks: null,
    });
    this.reportLoad();
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const received = Date.now();
    const frame = readRoomFrame(this.buckets, ws, message, received);
    if (!frame.ok) return this.error(ws, frame.code, frame.message);
    const raw = frame.raw;
    const parsed = RoomClientMessage.safeParse(raw);
    if (!parsed.success) return this.error(ws, 'bad_request', 'not a message a viewer sends');
    const msg = parsed.data;
    if (msg.type === 'ping') {
      this.send(ws, { type: 'pong', id: msg.id, t0: msg.t0, t1: received, t2: Date.now() });
      return;
    }
    if (msg.type === 'hello' && (msg.role ?? 'viewer') === 'viewer') {
      this.send(ws, { type: 'ack', id: msg.id ?? null, op: 'hello', version: this.state?.anchor.version ?? 0, role: 'viewer' });
      return;
    }
    this.error(ws, 'forbidden', 'this connection is a relayed viewer; controllers and agents connect with ?role=controller or ?role=agent', 'id' in msg ? (msg.id ?? null) : null);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    this.reportLoad();
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    this.reportLoad();
  }

  async holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]> {
    return holdsLeases(this.ctx, limiterId, leases);
  }

  private reportLoad(): void {
    const s = this.state;
    if (!s) return;
    const room = this.env.TRANSPORT.get(this.env.TRANSPORT.idFromName(s.code));
    // Best effort: the room also asks relays for their load when it needs an exact count.
    this.ctx.waitUntil(room.relayLoad(s.index, this.ctx.getWebSockets().length).catch(() => {}));
  }

  private send(ws: WebSocket, msg: RoomServerMessage): void {
    try {
      ws.send(JSON.stringify(msg));
    } catch {
      // closing
    }
  }

  private error(ws: WebSocket, code: ErrorCode, message: string, id: string | null = null): void {
    this.send(ws, { type: 'error', code, message, id });
  }
}

export function relayName(code: string, index: number): string {
  return `${code}/relay/${index}`;
}
