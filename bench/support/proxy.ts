// A TCP proxy on loopback that makes a network worse on purpose: one-way
// delay and jitter per direction, random connection cuts, refused
// connections and black holes. It forwards bytes, so HTTP, WebSocket and
// anything else pass through unchanged. This machine has no `tc netem`;
// benchmarks and tests put this between clients and the local server.
//
//   const proxy = await startProxy({ target: server.url, delayMs: 20, jitterMs: 5, cuts: { meanLifetimeMs: 800 } });
//   new WebSocket(proxy.url.replace('http', 'ws') + '/api/v1/…');
//   proxy.stats  // connections, cuts, bytes each way
//   await proxy.close();

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface CutOptions {
  /** Each connection is cut after a random lifetime, exponentially distributed with this mean. */
  meanLifetimeMs: number;
  /** No connection is cut sooner than this (it would never get a byte through). */
  minLifetimeMs?: number;
  /** Cut only connections that asked for a WebSocket upgrade (polls and other HTTP pass untouched). */
  webSocketsOnly?: boolean;
  /**
   * Start a connection's lifetime at the server's first byte (for a WebSocket,
   * its 101) rather than at the client's first: only established connections
   * are cut, never a handshake.
   */
  establishedOnly?: boolean;
}

export interface ProxyOptions {
  /** Where to forward: `http://host:port`, `ws://host:port`, or `{ host, port }`. */
  target: string | { host: string; port: number };
  /** Port to listen on (0, the default, picks a free one). Always 127.0.0.1. */
  port?: number;
  /** One-way delay, the same both ways or per direction (`up` is client → server). */
  delayMs?: number | { up: number; down: number };
  /** Extra delay drawn uniformly from [0, jitterMs) per chunk; order is always kept. */
  jitterMs?: number;
  /** Random cuts; null or absent for none. Changeable later with `setCuts`. */
  cuts?: CutOptions | null;
  /** Seeded randomness for reproducible runs (default Math.random). */
  random?: () => number;
}

export interface ProxyStats {
  connections: number;
  open: number;
  cuts: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
  /** Connections whose client went away inside a black hole: the server side stays open, as it would behind a dead link. */
  orphaned: number;
}

export interface Proxy {
  /** `http://127.0.0.1:PORT`: replace the scheme for WebSocket URLs. */
  url: string;
  port: number;
  readonly stats: ProxyStats;
  setCuts(cuts: CutOptions | null): void;
  setDelay(delayMs: number | { up: number; down: number }, jitterMs?: number): void;
  /** Refuse new connections (accept and close at once) while true. */
  refuse(on: boolean): void;
  /**
   * Stop forwarding without closing anything: a link that went dead silently.
   * A client that gives its connection up meanwhile is not heard by the
   * server either (no FIN crosses a dead link): the server's side stays open,
   * orphaned, until the server closes it or `cutAll` resets it (what the
   * server's retransmissions meet once the link is back).
   */
  blackhole(on: boolean): void;
  /** Cut every open connection now, orphans included. */
  cutAll(): void;
  close(): Promise<void>;
}

export { seededRandom } from '../../wasm/random.ts';

function parseTarget(target: ProxyOptions['target']): { host: string; port: number } {
  if (typeof target !== 'string') return target;
  const u = new URL(target);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' || u.protocol === 'wss:' ? 443 : 80;
  return { host: u.hostname, port };
}

/** Forwards chunks one way after a delay, never reordering them. */
class DelayedPipe {
  private lastDue = 0;
  /** Chunks in arrival order with their due times; one timer drains them, so order is kept. */
  private queue: Array<{ due: number; chunk: Buffer }> = [];
  /** The pending wake-up: a timer, or `true` while spinning on setImmediate. */
  private timer: ReturnType<typeof setTimeout> | true | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private readonly to: Socket;
  private readonly delay: () => number;
  private readonly count: (n: number) => void;
  constructor(to: Socket, delay: () => number, count: (n: number) => void) {
    this.to = to;
    this.delay = delay;
    this.count = count;
  }
  push(chunk: Buffer): void {
    const d = this.delay();
    if (d <= 0 && this.queue.length === 0) {
      this.write(chunk);
      return;
    }
    // Timers created at different moments for the same instant may fire in
    // any order; a byte stream must not, so due times never go backwards and
    // a single timer releases the queue head first.
    const due = Math.max(performance.now() + d, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, chunk });
    if (!this.timer) this.arm();
  }
  // Node's timers fire on whole milliseconds of a cached loop clock, which
  // would add up to a millisecond of its own jitter to every delay and blur
  // the floor that clock sync measures. So the timer wakes a little early and
  // the last fraction of a millisecond is waited out on setImmediate, which
  // lets other sockets' I/O run in between.
  private arm(): void {
    const head = this.queue[0];
    if (!head) return;
    const wait = head.due - performance.now();
    const release = () => {
      this.timer = null;
      const now = performance.now();
      while (this.queue.length && this.queue[0].due <= now) this.write(this.queue.shift()!.chunk);
      this.arm();
    };
    if (wait > 1.5) this.timer = setTimeout(release, Math.floor(wait - 1));
    else if (wait > 0) {
      const spin = () => (performance.now() >= head.due ? release() : (this.immediate = setImmediate(spin)));
      this.timer = true;
      this.immediate = setImmediate(spin);
    } else release();
  }
  private write(chunk: Buffer): void {
    if (this.to.destroyed) return;
    this.count(chunk.length);
    this.to.write(chunk);
  }
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const target = parseTarget(opts.target);
  const random = opts.random ?? Math.random;
  let delay = opts.delayMs ?? 0;
  let jitter = opts.jitterMs ?? 0;
  let cuts: CutOptions | null = opts.cuts ?? null;
  let refusing = false;
  let holing = false;
  const stats: ProxyStats = { connections: 0, open: 0, cuts: 0, refused: 0, bytesUp: 0, bytesDown: 0, orphaned: 0 };
  const live = new Set<{ cut: () => void; end: () => void; schedule: () => void; isWebSocket: boolean }>();

  const oneWay = (dir: 'up' | 'down') => () => {
    const base = typeof delay === 'number' ? delay : delay[dir];
    return base + (jitter > 0 ? random() * jitter : 0);
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      stats.refused++;
      client.destroy();
      return;
    }
    stats.connections++;
    stats.open++;
    client.setNoDelay(true);
    const upstream = connect(target.port, target.host);
    upstream.setNoDelay(true);
    const up = new DelayedPipe(upstream, oneWay('up'), (n) => (stats.bytesUp += n));
    const down = new DelayedPipe(client, oneWay('down'), (n) => (stats.bytesDown += n));
    let timer: ReturnType<typeof setTimeout> | null = null;
    let sniffed = false;
    const conn = {
      isWebSocket: false,
      cut: () => {
        if (client.destroyed && upstream.destroyed) return;
        stats.cuts++;
        end();
      },
      schedule: () => {
        if (timer) clearTimeout(timer);
        timer = null;
        if (!cuts || (cuts.webSocketsOnly && !conn.isWebSocket)) return;
        // Exponential lifetimes: cuts arrive as a Poisson process, like a flaky link.
        const life = Math.max(cuts.minLifetimeMs ?? 50, -Math.log(1 - random()) * cuts.meanLifetimeMs);
        timer = setTimeout(conn.cut, life);
      },
      end: () => end(),
    };
    const end = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (live.delete(conn)) stats.open--;
      client.destroy();
      upstream.destroy();
    };
    live.add(conn);
    let answered = false;
    client.on('data', (chunk: Buffer) => {
      if (!sniffed) {
        sniffed = true;
        conn.isWebSocket = /\r\nupgrade:\s*websocket/i.test(chunk.subarray(0, 4096).toString('latin1'));
        if (!cuts?.establishedOnly) conn.schedule();
      }
      if (!holing) up.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!answered) {
        answered = true;
        if (cuts?.establishedOnly) conn.schedule();
      }
      if (!holing) down.push(chunk);
    });
    let orphaned = false;
    const clientGone = () => {
      if (!holing || upstream.destroyed) return end();
      if (orphaned) return;
      orphaned = true;
      stats.orphaned++;
    };
    client.on('close', clientGone);
    upstream.on('close', end);
    client.on('error', clientGone);
    upstream.on('error', end);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    setCuts(next) {
      cuts = next;
      for (const c of live) c.schedule();
    },
    setDelay(next, nextJitter) {
      delay = next;
      if (nextJitter !== undefined) jitter = nextJitter;
    },
    refuse(on) {
      refusing = on;
    },
    blackhole(on) {
      holing = on;
    },
    cutAll() {
      for (const c of [...live]) c.cut();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of [...live]) c.end();
        server.close(() => resolve());
      }),
  };
}
