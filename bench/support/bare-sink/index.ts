// See wrangler.toml: the least a Durable Object can do with a stream of audio frames.
import { DurableObject } from 'cloudflare:workers';

interface Env {
  SINK: DurableObjectNamespace<BareSink>;
}

export class BareSink extends DurableObject<Env> {
  private frames = 0;
  private samples = 0;

  async fetch(req: Request): Promise<Response> {
    const pair = new WebSocketPair();
    if (new URL(req.url).searchParams.get('accept') === 'plain') {
      // The non-hibernating API, to tell the hibernation path's share apart.
      const ws = pair[1];
      ws.accept();
      ws.addEventListener('message', (e) => this.webSocketMessage(ws, e.data as string | ArrayBuffer));
    } else {
      this.ctx.acceptWebSocket(pair[1]);
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    if (typeof data === 'string') return;
    // Touch the samples as an analysis would, so the frame is really read.
    const x = new Float32Array(data);
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    this.samples += x.length;
    if (++this.frames % 5 === 0) ws.send(JSON.stringify({ type: 'analysis', seq: this.frames / 5, rms: Math.sqrt(s / Math.max(1, x.length)) }));
  }

  webSocketClose(ws: WebSocket, code: number): void {
    try {
      ws.close(code === 1005 ? 1000 : code, 'bye');
    } catch {
      // closed
    }
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (path === '/api/v1/health') return Response.json({ ok: true });
    const m = /^\/sink\/([^/]+)$/.exec(path);
    if (m) return env.SINK.get(env.SINK.idFromName(m[1])).fetch(req);
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler<Env>;
