// Property-based: whatever text or binary frames reach a live analysis stream
// or a match stream, the stream answers with typed messages, never crashes,
// and still analyses (or identifies) the next good audio.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { api, sleep } from './helpers.ts';
import { ERROR_STATUS } from '../../src/protocol/index.ts';
import type { AnalysisServerMessage } from '../../src/protocol/analysis-messages.ts';
import type { MatchServerMessage } from '../../src/protocol/match-messages.ts';

const ERROR_CODES = Object.keys(ERROR_STATUS);

/** A socket that keeps everything it receives. */
class Recorder<M extends { type: string }> {
  readonly ws: WebSocket;
  readonly got: M[] = [];
  closed: { code: number; reason: string } | null = null;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      this.got.push(JSON.parse(e.data as string) as M);
    });
    ws.addEventListener('close', (e) => {
      this.closed = { code: e.code, reason: e.reason };
    });
  }
  send(f: string | ArrayBuffer | Uint8Array) {
    this.ws.send(f instanceof Uint8Array ? f.slice().buffer : f);
  }
  async until(pred: (m: M) => boolean, what: string, from = 0, timeoutMs = 5000): Promise<M> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.got.slice(from).find(pred);
      if (m) return m;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${this.got.slice(from).map((x) => x.type).join(',')}`);
      await sleep(5);
    }
  }
  close() {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // closed
    }
  }
}

async function open<M extends { type: string }>(path: string): Promise<Recorder<M>> {
  const res = await api(path, { headers: { upgrade: 'websocket' } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  return new Recorder<M>(res.webSocket);
}

function tone(hz: number, seconds: number, rate: number): Float32Array {
  const x = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < x.length; i++) x[i] = 0.5 * Math.sin((2 * Math.PI * hz * i) / rate);
  return x;
}

/** f32 frames of random sizes (odd byte counts included) holding anything: NaN, ±Inf, denormals, huge values. */
const audioFrame = fc.oneof(
  fc.uint8Array({ maxLength: 4099 }),
  fc.float32Array({ maxLength: 1024 }).map((a) => new Uint8Array(a.buffer)),
  fc
    .array(fc.constantFrom(NaN, Infinity, -Infinity, 0, 1e38, -1e-45, 0.5), { minLength: 1, maxLength: 256 })
    .map((v) => new Uint8Array(Float32Array.from(v).buffer)),
  fc.constant(new Uint8Array(0)),
  // Over the frame limit (256 KiB).
  fc.constant(new Uint8Array(256 * 1024 + 4)),
);

const anyText = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ maxLength: 200 }), fc.constant('y'.repeat(3000)));

describe('analysis stream input, property-based', () => {
  it('answers every text message with exactly one typed reply and stays open', async () => {
    const s = await open<AnalysisServerMessage>(`/api/v1/analysis/fuzz-text-${Date.now()}`);
    await s.until((m) => m.type === 'welcome', 'welcome');
    const hello = fc
      .record(
        {
          type: fc.constantFrom('hello', 'stats', 'ping', 'pong', 'nope'),
          role: fc.oneof(fc.constantFrom('source', 'watcher', 'admin'), fc.string({ maxLength: 8 })),
          sample_rate: fc.oneof(fc.integer({ min: -1, max: 200_000 }), fc.double(), fc.constantFrom(44_100, 8_000, 96_000)),
          format: fc.oneof(fc.constantFrom('f32', 's16', 'u8'), fc.string({ maxLength: 4 })),
          t0_server_ms: fc.oneof(fc.double(), fc.integer()),
          id: fc.oneof(fc.string({ maxLength: 70 }), fc.integer()),
          t0: fc.oneof(fc.double(), fc.string({ maxLength: 3 })),
        },
        { requiredKeys: ['type'] },
      )
      .map((v) => JSON.stringify(v));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(hello, anyText), async (text) => {
        const from = s.got.length;
        s.send(text);
        // A valid ping after each frame: its pong marks the end of the frame's answer (and resets the bad-message count).
        const mark = `mark-${n++}`;
        s.send(JSON.stringify({ type: 'ping', id: mark }));
        await s.until((m) => m.type === 'pong' && m.id === mark, 'the marker pong', from);
        const replies = s.got.slice(from).filter((m) => !(m.type === 'pong' && m.id === mark));
        expect(replies.length, text.slice(0, 80)).toBe(1);
        const r = replies[0];
        expect(['pong', 'stats', 'ready', 'error']).toContain(r.type);
        if (r.type === 'error') expect(ERROR_CODES).toContain(r.code);
      }),
      { numRuns: 120 },
    );
    expect(s.closed).toBeNull();
    s.close();
  });

  it('refuses bad audio frames with typed errors and still measures a clean tone', async () => {
    const rate = 16_000;
    const stream = `fuzz-audio-${Date.now()}`;
    const s = await open<AnalysisServerMessage>(`/api/v1/analysis/${stream}`);
    await s.until((m) => m.type === 'welcome', 'welcome');
    s.send(JSON.stringify({ type: 'hello', role: 'source', sample_rate: rate, format: 'f32' }));
    await s.until((m) => m.type === 'ready', 'ready');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(audioFrame, async (frame) => {
        const from = s.got.length;
        s.send(frame);
        const mark = `s${n++}`;
        s.send(JSON.stringify({ type: 'stats', id: mark }));
        await s.until((m) => m.type === 'stats' && m.id === mark, 'the marker stats', from);
        for (const m of s.got.slice(from)) {
          expect(['analysis', 'stats', 'error']).toContain(m.type);
          if (m.type === 'error') expect(ERROR_CODES).toContain(m.code);
        }
        const refused = s.got.slice(from).find((m) => m.type === 'error');
        const bytes = frame.byteLength;
        if (bytes % 4 !== 0 || bytes > 256 * 1024) expect(refused).toBeDefined();
        const f = new Float32Array(frame.buffer, frame.byteOffset, Math.floor(bytes / 4));
        if (bytes % 4 === 0 && bytes <= 256 * 1024 && f.some((v) => !Number.isFinite(v))) {
          expect(refused && refused.type === 'error' && refused.reason).toBe('non_finite_samples');
        }
      }),
      { numRuns: 100 },
    );
    expect(s.closed).toBeNull();
    // The stream still works: a clean tone at half scale is measured at -9 dB RMS,
    // with its pitch (junk before it, clipped or refused, does not silence it).
    const from = s.got.length;
    const x = tone(440, 0.5, rate);
    for (let i = 0; i < x.length; i += 800) s.send(new Uint8Array(x.slice(i, i + 800).buffer));
    const mark = 'after-tone';
    await sleep(300);
    s.send(JSON.stringify({ type: 'stats', id: mark }));
    await s.until((m) => m.type === 'stats' && m.id === mark, 'stats after the tone', from);
    const results = s.got.slice(from).filter((m) => m.type === 'analysis');
    expect(results.length).toBeGreaterThanOrEqual(5);
    // The first result may still cover the end of the fuzzed audio.
    for (const r of results.slice(2)) expect(r.type === 'analysis' && r.dynamics.rms_db).toBeCloseTo(-9.03, 0);
    for (const r of results.slice(3)) expect(r.type === 'analysis' && r.pitch?.note).toBe('A4');
    expect(s.got.slice(from).filter((m) => m.type === 'error')).toEqual([]);
    s.close();
  });
});

/** A token-like string that cannot occur in any message of ours by chance. */
const marker = fc.integer({ min: 1e9, max: 2 ** 52 }).map((n) => `qz${n.toString(36)}xq`);

describe('analysis errors never repeat what the client sent', () => {
  it('in stream frames: the marker in any field of any message comes back in no error (a request id only as the id, and only when valid)', async () => {
    const s = await open<AnalysisServerMessage>(`/api/v1/analysis/fuzz-echo-${Date.now()}`);
    await s.until((m) => m.type === 'welcome', 'welcome');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(marker, fc.nat(11), async (m, shape) => {
        const frames: unknown[] = [
          { type: m },
          { type: 'hello', role: m },
          { type: 'hello', role: 'source', sample_rate: 48_000, format: m },
          { type: 'hello', role: 'source', sample_rate: m, format: 'f32' },
          { type: 'hello', role: 'watcher', [m]: 1 },
          { type: 'ping', t0: m },
          { type: 'ping', [m]: m },
          { type: 'stats', id: m.repeat(8) },
          { type: 'stats', id: { [m]: 1 } },
          { type: 'hello', role: 'source', sample_rate: 48_000, format: 'f32', t0_server_ms: m },
          `{${m}`,
          m,
        ];
        const f = frames[shape];
        const from = s.got.length;
        s.send(typeof f === 'string' ? f : JSON.stringify(f));
        const mark = `echo-${n++}`;
        s.send(JSON.stringify({ type: 'ping', id: mark }));
        await s.until((x) => x.type === 'pong' && x.id === mark, 'the marker pong', from);
        for (const r of s.got.slice(from)) {
          if (r.type !== 'error') continue;
          expect(JSON.stringify({ ...r, id: null }).includes(m), JSON.stringify(r)).toBe(false);
          // An id longer than requests allow is not a request id: it is not sent back.
          if (shape === 7) expect(r.id).toBeNull();
        }
      }),
      { numRuns: 60 },
    );
    s.close();
  });

  it('in REST answers: stream ids, room codes, WAV bodies and the async preference', async () => {
    await fc.assert(
      fc.asyncProperty(marker, async (m) => {
        const answers = [
          await api(`/api/v1/analysis/${m}!`, { headers: { upgrade: 'websocket' } }),
          await api(`/api/v1/analysis/${m}`),
          await api(`/api/v1/rooms/${m}/analysis/x`, { headers: { upgrade: 'websocket' }, ip: '10.77.0.1' }),
          await api('/api/v1/analyze', { method: 'POST', body: `RIFF${m}WAVEfmt ${m}` }),
          await api('/api/v1/analyze?async=1', { method: 'POST', body: m, headers: { prefer: m } }),
          await api(`/api/v1/analyze/results/${m}`),
        ];
        for (const res of answers) {
          const text = await res.text();
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(text.includes(m), text.slice(0, 200)).toBe(false);
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe('match stream input, property-based', () => {
  it('answers every sequence of frames with typed messages and still ends cleanly', async () => {
    const clientId = `fuzz-${Date.now()}`;
    const step = fc.oneof(
      fc
        .record(
          {
            type: fc.constantFrom('hello', 'end', 'nope'),
            sample_rate: fc.oneof(fc.integer({ min: 0, max: 300_000 }), fc.constantFrom(22_050, 8_000), fc.double()),
            format: fc.oneof(fc.constantFrom('f32', 's16', 'mp3'), fc.string({ maxLength: 3 })),
            channels: fc.integer({ min: 0, max: 3 }),
          },
          { requiredKeys: ['type'] },
        )
        .map((v) => JSON.stringify(v)),
      anyText,
      audioFrame,
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (frames) => {
        // One connection per run: the stream closes a socket after 20 refused frames, by design.
        const s = await open<MatchServerMessage>(`/api/v1/match/${clientId}`);
        for (const f of frames) s.send(f);
        s.send(JSON.stringify({ type: 'end' }));
        // An end always gets its ended, whatever came before (a hello or not).
        await s.until((m) => m.type === 'ended', 'ended');
        for (const m of s.got) {
          expect(['ready', 'status', 'match', 'ended', 'error']).toContain(m.type);
          if (m.type === 'error') expect(ERROR_CODES).toContain(m.code);
        }
        expect(s.closed).toBeNull();
        s.close();
      }),
      { numRuns: 40 },
    );
    // The same client id still streams: a hello is answered and audio is taken.
    const s = await open<MatchServerMessage>(`/api/v1/match/${clientId}`);
    s.send(JSON.stringify({ type: 'hello', sample_rate: 8000, format: 'f32' }));
    await s.until((m) => m.type === 'ready', 'ready');
    s.send(new Uint8Array(tone(440, 1, 8000).buffer));
    s.send(JSON.stringify({ type: 'end' }));
    const ended = await s.until((m) => m.type === 'ended', 'ended');
    expect(ended.type === 'ended' && ended.data.audio_s).toBeCloseTo(1, 2);
    expect(s.got.filter((m) => m.type === 'error')).toEqual([]);
    s.close();
  });
});
