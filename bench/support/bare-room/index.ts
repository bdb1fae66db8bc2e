// The fan-out floor: one object, hibernatable sockets, no validation, no
// storage, no roles. Speaks just enough of roomtone's room protocol (welcome,
// ack, anchor with a version) for bench/transport.ts to drive it unchanged.
import { DurableObject } from 'cloudflare:workers';

interface Env {
  ROOM: DurableObjectNamespace<BareRoom>;
}

export class BareRoom extends DurableObject<Env> {
  private version = 1;

  async fetch(): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].send(JSON.stringify({ type: 'welcome', version: this.version }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    const m = JSON.parse(String(data)) as { type: string; id?: string };
    if (m.type !== 'hello') {
      // A frame the size of roomtone's anchor event.
      const anchor = { server_ms: Date.now(), sample_pos: 0, sample_rate: 48000, status: 'playing', bpm: 120, beats_per_bar: 4, rate: 1, version: ++this.version };
      const text = JSON.stringify({ type: 'anchor', anchor, cause: m.type });
      for (const s of this.ctx.getWebSockets()) s.send(text);
    }
    ws.send(JSON.stringify({ type: 'ack', id: m.id, version: this.version }));
  }

  // Answering the close is the least any object must do: an unanswered one keeps the socket's memory.
  webSocketClose(ws: WebSocket): void {
    try {
      ws.close(1000, 'bye');
    } catch {
      // already closed
    }
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (path === '/api/v1/health') return Response.json({ ok: true });
    if (path === '/api/v1/rooms' && req.method === 'POST') return Response.json({ code: crypto.randomUUID(), control_token: 'none' });
    const m = /^\/api\/v1\/rooms\/([^/]+)\/ws$/.exec(path);
    if (m) return env.ROOM.get(env.ROOM.idFromName(m[1])).fetch(req);
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler<Env>;
