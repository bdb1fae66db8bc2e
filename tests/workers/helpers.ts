import { exports } from 'cloudflare:workers';
import type { RoomServerMessage } from '../../src/protocol/index.ts';

export const BASE = 'http://roomtone.test';

export function api(path: string, init: RequestInit & { ip?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.ip) headers.set('cf-connecting-ip', init.ip);
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(BASE + path, { ...init, headers }));
}

export interface CreatedRoom {
  code: string;
  control_token: string;
  ws_url: string;
  page_url: string;
}

export async function createRoom(body: Record<string, unknown> = {}): Promise<CreatedRoom> {
  const res = await api('/api/v1/rooms', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.json();
}

export function control(code: string, token: string | null, op: string, body?: unknown, ip?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return api(`/api/v1/rooms/${code}/transport/${op}`, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body), ip });
}

/** A client socket that queues what arrives, so tests can await the next message of a type. */
export class TestSocket<M extends { type: string } = RoomServerMessage> {
  readonly ws: WebSocket;
  /** Everything received, in order (the queue below is consumed by `next`). */
  readonly messages: M[] = [];
  private queue: M[] = [];
  private waiters: Array<() => void> = [];
  closed: { code: number; reason: string } | null = null;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(e.data as string) as M;
      this.messages.push(m);
      this.queue.push(m);
      this.wake();
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' || msg instanceof ArrayBuffer ? msg : JSON.stringify(msg));
  }

  async next<T extends M['type']>(type: T, timeoutMs = 3000): Promise<Extract<M, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => m.type === type);
      if (i >= 0) return this.queue.splice(i, 1)[0] as Extract<M, { type: T }>;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}; have ${this.queue.map((m) => m.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  drain(): M[] {
    return this.queue.splice(0);
  }

  async closedWith(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  close() {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // already closed
    }
  }
}

export async function openRoomSocket(code: string, query = '', ip?: string): Promise<TestSocket> {
  const headers: Record<string, string> = { upgrade: 'websocket' };
  if (ip) headers['cf-connecting-ip'] = ip;
  const res = await api(`/api/v1/rooms/${code}/ws${query}`, { headers });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  return new TestSocket(res.webSocket);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
