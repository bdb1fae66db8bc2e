import { describe, expect, it } from 'vitest';
import { env, evictDurableObject } from 'cloudflare:test';
import { api, control, createRoom, sleep } from './helpers.ts';
import type { AnalysisResult, AnalysisServerMessage } from '../../src/protocol/analysis-messages.ts';
import { encodeWav } from '../../wasm/wav.ts';
import { harmonicTone, seededNoise } from '../../wasm/dsp/dsp.shared-cases.ts';
import { midiName } from '../../wasm/dsp/notes.ts';

type Msg = AnalysisServerMessage;

/** A client socket that queues JSON messages and can send binary frames. */
class StreamSocket {
  readonly ws: WebSocket;
  readonly messages: Msg[] = [];
  /** The text of every message as it arrived. */
  readonly texts: string[] = [];
  private taken = 0;
  closed: { code: number; reason: string } | null = null;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      this.texts.push(e.data as string);
      this.messages.push(JSON.parse(e.data as string));
    });
    ws.addEventListener('close', (e) => (this.closed = { code: e.code, reason: e.reason }));
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  sendAudio(samples: Float32Array, format: 'f32' | 's16' = 'f32'): void {
    if (format === 'f32') this.ws.send(samples.slice().buffer);
    else {
      const s = new Int16Array(samples.length);
      for (let i = 0; i < s.length; i++) s[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768)));
      this.ws.send(s.buffer);
    }
  }

  /** The next message of a type not returned before. */
  async next<T extends Msg['type']>(type: T, timeoutMs = 3000): Promise<Extract<Msg, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.taken; i < this.messages.length; i++) {
        if (this.messages[i].type === type) {
          this.taken = i + 1;
          return this.messages[i] as Extract<Msg, { type: T }>;
        }
      }
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${type}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${type}; have ${this.messages.map((m) => m.type).join(',')}`);
      await sleep(5);
    }
  }

  results(): AnalysisResult[] {
    return this.messages.filter((m): m is AnalysisResult => m.type === 'analysis');
  }

  async until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  }

  async closedWith(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, 'close', timeoutMs);
    return this.closed!;
  }

  close(): void {
    try {
      this.ws.close(1000, 'done');
    } catch {
      // closed
    }
  }
}

async function open(path: string): Promise<StreamSocket> {
  const res = await api(path, { headers: { upgrade: 'websocket' } });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const s = new StreamSocket(res.webSocket);
  await s.next('welcome');
  return s;
}

let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

async function source(path: string, sampleRate = 44_100, format: 'f32' | 's16' = 'f32', extra: Record<string, unknown> = {}) {
  const s = await open(path);
  s.send({ type: 'hello', role: 'source', sample_rate: sampleRate, format, ...extra });
  const ready = await s.next('ready');
  return { s, ready };
}

/** Sends audio in frames of `frame` samples, as fast as the burst allowance lets a test go. */
function stream(s: StreamSocket, x: Float32Array, frame: number, format: 'f32' | 's16' = 'f32') {
  for (let i = 0; i < x.length; i += frame) s.sendAudio(x.subarray(i, Math.min(x.length, i + frame)), format);
}

async function expectErrorOn(s: StreamSocket, code: string, reason: string) {
  const e = await s.next('error');
  expect({ code: e.code, reason: e.reason }).toEqual({ code, reason });
  return e;
}

describe('a live analysis stream', () => {
  it('analyses a source and sends pitch, dynamics and a rising seq to the source and every watcher', async () => {
    const path = `/api/v1/analysis/${unique('tone')}`;
    const w1 = await open(path);
    w1.send({ type: 'hello', role: 'watcher' });
    expect((await w1.next('ready')).role).toBe('watcher');
    const { s, ready } = await source(path);
    expect(ready).toMatchObject({ role: 'source', sample_rate: 44_100, format: 'f32', window: 2048, hop: 512 });
    expect((await w1.next('status')).state).toBe('source_joined');
    const w2 = await open(path);
    w2.send({ type: 'hello', role: 'watcher' });
    expect(await w2.next('ready')).toMatchObject({ sample_rate: 44_100, hop: 512 });

    const x = harmonicTone(44_100, 440, 1, 5, 0.4, 0.01);
    stream(s, x, 882); // 20 ms frames
    await s.until(() => s.results().some((r) => r.t >= 0.95), 'results up to 0.95 s');
    const got = s.results();
    const mid = got.filter((r) => r.t > 0.1 && r.t < 0.9);
    expect(mid.length).toBeGreaterThan(10);
    for (const r of mid) {
      expect(r.pitch).not.toBeNull();
      expect(r.pitch!.note).toBe('A4');
      expect(Math.abs(r.pitch!.cents)).toBeLessThan(2);
      expect(r.pitch!.confidence).toBeGreaterThan(0.9);
      expect(r.dynamics.velocity).toBeGreaterThan(50);
      expect(r.dynamics.rms_db).toBeLessThan(0);
    }
    // Results are written as JSON text directly: exactly what JSON.stringify would give.
    for (const text of s.texts) expect(JSON.stringify(JSON.parse(text))).toBe(text);
    for (let i = 1; i < got.length; i++) {
      expect(got[i].seq).toBe(got[i - 1].seq + 1);
      expect(got[i].t - got[i - 1].t).toBeLessThanOrEqual(0.05 + 1e-9);
    }
    // Watchers get the same results.
    await w2.until(() => w2.results().some((r) => r.seq === got.at(-1)!.seq), 'watcher 2 up to date');
    await w1.until(() => w1.results().some((r) => r.seq === got.at(-1)!.seq), 'watcher 1 up to date');
    expect(w1.results().find((r) => r.seq === got[5].seq)).toEqual(got[5]);

    s.send({ type: 'stats', id: 'st' });
    const stats = await s.next('stats');
    expect(stats).toMatchObject({ id: 'st', source_connected: true, watchers: 2, sample_rate: 44_100, format: 'f32', samples_in: 44_100, restarts: 0 });
    // Messages arrive in order: every result sent before the stats reply is here.
    expect(stats.results_sent).toBe(s.results().length);

    s.close();
    expect((await w1.next('status')).state).toBe('source_left');
    w1.close();
    w2.close();
  });

  it('gives a source that connects with role=source a plain socket that works like the hibernatable one', async () => {
    const path = `/api/v1/analysis/${unique('plain')}`;
    const w = await open(path);
    w.send({ type: 'hello', role: 'watcher' });
    await w.next('ready');
    const { s, ready } = await source(`${path}?role=source`);
    expect(ready).toMatchObject({ role: 'source', sample_rate: 44_100, hop: 512 });
    expect((await w.next('status')).state).toBe('source_joined');
    // The plain socket holds the source role: a second source is refused.
    const other = await open(path);
    other.send({ type: 'hello', role: 'source', sample_rate: 44_100, format: 'f32' });
    await expectErrorOn(other, 'conflict', 'source_taken');
    stream(s, harmonicTone(44_100, 440, 0.6, 5, 0.4, 0.01), 882);
    await s.until(() => s.results().some((r) => r.t >= 0.5), 'results');
    await w.until(() => w.results().some((r) => r.seq === s.results().at(-1)!.seq), 'the watcher up to date');
    expect(s.results().filter((r) => r.t > 0.1 && r.t < 0.5).every((r) => r.pitch?.note === 'A4')).toBe(true);
    s.send({ type: 'stats' });
    expect(await s.next('stats')).toMatchObject({ source_connected: true, watchers: 1 });
    s.close();
    expect((await w.next('status')).state).toBe('source_left');
    // The role is free again once the plain socket closed.
    const again = await source(path);
    expect(again.ready.role).toBe('source');
    again.s.close();
    other.close();
    w.close();
  });

  it('takes 16-bit PCM and frames of any size, and names the notes of a melody', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('s16')}`, 16_000, 's16');
    const notes = [60, 64, 67, 72];
    const x = new Float32Array(16_000 * 2);
    notes.forEach((m, i) => x.set(harmonicTone(16_000, 440 * 2 ** ((m - 69) / 12), 0.45, 4, 0.4, 0.01), i * 8000));
    const sizes = [1, 37, 160, 999, 4000];
    let i = 0;
    for (let k = 0; i < x.length; k++) {
      const len = sizes[k % sizes.length];
      s.sendAudio(x.subarray(i, i + len), 's16');
      i += len;
    }
    await s.until(() => s.results().some((r) => r.t >= 1.95), 'the whole melody');
    notes.forEach((m, k) => {
      const inNote = s.results().filter((r) => r.t > k * 0.5 + 0.08 && r.t < k * 0.5 + 0.4);
      expect(inNote.length).toBeGreaterThan(3);
      for (const r of inNote) expect(r.pitch?.note).toBe(midiName(m));
    });
    // Three onsets between the notes (the first note starts the stream).
    const onsets = s.results().flatMap((r) => r.onsets);
    expect(onsets.length).toBe(3);
    onsets.forEach((t, k) => expect(Math.abs(t - (k + 1) * 0.5)).toBeLessThan(0.02));
    s.close();
  });

  it('times the clicks of a click track within 20 ms and calls silence unvoiced', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('clicks')}`, 48_000);
    const times = [0.25, 0.5, 0.625, 0.9, 1.2];
    const x = seededNoise(48_000 * 1.5, 3, 0.0005);
    for (const t of times) {
      const at = Math.round(t * 48_000);
      const burst = seededNoise(480, at, 0.7);
      for (let i = 0; i < burst.length; i++) x[at + i] += burst[i] * Math.exp(-i / 96);
    }
    stream(s, x, 4800);
    await s.until(() => s.results().some((r) => r.t >= 1.45), 'the whole track');
    const onsets = s.results().flatMap((r) => r.onsets);
    expect(onsets.length).toBe(times.length);
    onsets.forEach((t, i) => expect(Math.abs(t - times[i])).toBeLessThan(0.02));
    expect(s.results().every((r) => r.pitch === null)).toBe(true);
    s.close();
  });

  it('sends a result at least every 50 ms of audio even when one frame carries a second of it', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('big')}`, 22_050);
    s.sendAudio(harmonicTone(22_050, 330, 1, 3, 0.5));
    await s.until(() => s.results().some((r) => r.t >= 0.95), 'results for the second');
    const ts = s.results().map((r) => r.t);
    expect(ts[0]).toBeLessThanOrEqual(0.05);
    for (let i = 1; i < ts.length; i++) expect(ts[i] - ts[i - 1]).toBeLessThanOrEqual(0.05 + 1e-9);
    s.close();
  });

  it('answers ping with pong and server times', async () => {
    const s = await open(`/api/v1/analysis/${unique('ping')}`);
    s.send({ type: 'ping', id: 'p1', t0: 123 });
    const pong = await s.next('pong');
    expect(pong).toMatchObject({ id: 'p1', t0: 123 });
    expect(pong.t2).toBeGreaterThanOrEqual(pong.t1);
    s.close();
  });
});

describe('bad input gets a typed error frame', () => {
  async function expectError(s: StreamSocket, code: string, reason: string) {
    const e = await s.next('error');
    expect({ code: e.code, reason: e.reason }).toEqual({ code, reason });
    return e;
  }

  it('refuses audio before hello, and bad hellos, and the stream goes on', async () => {
    const s = await open(`/api/v1/analysis/${unique('nohello')}`);
    s.sendAudio(new Float32Array(100));
    await expectError(s, 'invalid_state', 'hello_required');
    s.send({ type: 'hello', role: 'source', sample_rate: 44_100, format: 'u8' });
    expect((await expectError(s, 'unsupported', 'unsupported_format')).message).toMatch(/"f32" or "s16"/);
    s.send({ type: 'hello', role: 'source', sample_rate: 4_000, format: 'f32' });
    expect((await expectError(s, 'unsupported', 'unsupported_rate')).message).toMatch(/8000 to 96000/);
    s.send({ type: 'hello', role: 'source', sample_rate: 192_000, format: 's16' });
    await expectError(s, 'unsupported', 'unsupported_rate');
    s.send({ type: 'hello', role: 'conductor' });
    await expectError(s, 'bad_request', 'bad_message');
    s.send('{not json');
    await expectError(s, 'bad_json', 'bad_message');
    s.send({ type: 'dance' });
    await expectError(s, 'unknown_type', 'bad_message');
    // After all that, a good hello works.
    s.send({ type: 'hello', role: 'source', sample_rate: 8_000, format: 's16' });
    expect((await s.next('ready')).sample_rate).toBe(8_000);
    s.send({ type: 'hello', role: 'watcher' });
    await expectError(s, 'invalid_state', 'hello_repeated');
    s.close();
  });

  it('refuses odd byte counts, NaN and Inf samples and oversized frames, and keeps analysing', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('frames')}`, 44_100, 'f32');
    s.ws.send(new Uint8Array(6).buffer);
    expect((await expectError(s, 'bad_request', 'odd_byte_count')).message).toMatch(/4-byte samples; got 6 bytes/);
    const bad = new Float32Array(64);
    bad[10] = NaN;
    s.sendAudio(bad);
    await expectError(s, 'bad_request', 'non_finite_samples');
    bad[10] = Infinity;
    s.sendAudio(bad);
    await expectError(s, 'bad_request', 'non_finite_samples');
    s.ws.send(new Float32Array(256 * 1024 / 4 + 1).buffer);
    await expectError(s, 'too_large', 'frame_too_large');
    s.sendAudio(harmonicTone(44_100, 220, 0.3, 3, 0.4));
    await s.until(() => s.results().some((r) => r.pitch?.note === 'A3'), 'analysis after the errors');
    s.send({ type: 'stats' });
    const stats = await s.next('stats');
    expect(stats.dropped).toEqual({ odd_byte_count: 1, non_finite_samples: 2, frame_too_large: 1 });
    s.close();

    const s16 = (await source(`/api/v1/analysis/${unique('odd16')}`, 16_000, 's16')).s;
    s16.ws.send(new Uint8Array(3).buffer);
    expect((await expectError(s16, 'bad_request', 'odd_byte_count')).message).toMatch(/2-byte samples/);
    s16.close();
  });

  it('clips hot f32 samples and counts them, refuses absurd ones, and a click or a glitch does not silence the pitch', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('spike')}`, 44_100, 'f32');
    // A quiet tone, so a full-scale click is ~50 dB over it.
    const x = harmonicTone(44_100, 220, 1.6, 3, 0.01);
    x[22_050] = 1; // a full-scale click, in range: analysed as is
    x[30_000] = 2.5; // hot but plausible float audio: clipped to 1
    x[30_001] = -3;
    const frame = 882;
    const glitchFrame = Math.floor(40_000 / frame);
    for (let i = 0, k = 0; i < x.length; i += frame, k++) {
      const chunk = x.slice(i, Math.min(x.length, i + frame));
      if (k === glitchFrame) {
        // One absurd sample (integer PCM or garbage read as f32): this frame is refused…
        const bad = chunk.slice();
        bad[100] = 1e5;
        s.sendAudio(bad);
      }
      // …and the stream goes on with the next one.
      s.sendAudio(chunk);
    }
    const e = await expectError(s, 'bad_request', 'samples_out_of_range');
    expect(e.message).toMatch(/sample 100 of the frame lies beyond ±16/);
    await s.until(() => s.results().some((r) => r.t >= 1.5), 'results up to 1.5 s');
    // Every result whose window (±23 ms) holds none of those samples has the tone's pitch.
    const hit = (t: number) => [22_050, 30_000].some((at) => Math.abs(t - at / 44_100) < 0.03);
    const after = s.results().filter((r) => r.t > 0.45 && r.t < 1.5 && !hit(r.t));
    expect(after.length).toBeGreaterThan(15);
    for (const r of after) expect(r.pitch?.note, `t ${r.t}`).toBe('A3');
    s.send({ type: 'stats' });
    const stats = await s.next('stats');
    expect(stats.clipped_samples).toBe(2);
    expect(stats.dropped).toEqual({ samples_out_of_range: 1 });
    expect(stats.samples_in).toBe(x.length);
    s.close();
  });

  it('allows one source: a second is refused and may watch instead; watchers cannot send audio', async () => {
    const path = `/api/v1/analysis/${unique('roles')}`;
    const { s } = await source(path);
    const other = await open(path);
    other.send({ type: 'hello', role: 'source', sample_rate: 44_100, format: 'f32' });
    await expectError(other, 'conflict', 'source_taken');
    other.send({ type: 'hello', role: 'watcher' });
    await other.next('ready');
    other.sendAudio(new Float32Array(64));
    await expectError(other, 'forbidden', 'not_source');
    // When the source leaves, a new one may join.
    s.close();
    await other.next('status');
    const next = await source(path);
    expect(next.ready.role).toBe('source');
    next.s.close();
    other.close();
  });

  it('refuses audio faster than real time beyond the burst allowance, then closes a source that keeps at it', async () => {
    const { s } = await source(`/api/v1/analysis/${unique('fast')}`, 8_000, 's16');
    // 1.5 s fits the 2 s burst; the next 1.5 s does not.
    s.sendAudio(new Float32Array(12_000), 's16');
    s.sendAudio(new Float32Array(12_000), 's16');
    const e = await expectError(s, 'rate_limited', 'too_fast');
    expect(e.message).toMatch(/faster than real time/);
    for (let i = 0; i < 25; i++) s.sendAudio(new Float32Array(12_000), 's16');
    const closed = await s.closedWith();
    expect(closed.code).toBe(4008);
    expect(s.messages.some((m) => m.type === 'error' && m.closing)).toBe(true);
  });

  it('closes a socket that sends nothing but bad messages', async () => {
    const s = await open(`/api/v1/analysis/${unique('spam')}`);
    for (let i = 0; i < 60; i++) s.send('nope');
    expect((await s.closedWith()).code).toBe(4003);
  });

  it('refuses bad stream ids and plain HTTP', async () => {
    expect((await api('/api/v1/analysis/has%20space', { headers: { upgrade: 'websocket' } })).status).toBe(400);
    expect((await api(`/api/v1/analysis/${unique('http')}`)).status).toBe(426);
  });
});

describe('eviction', () => {
  it('restarts the analysis with a status message and continues seq after the object is evicted', async () => {
    const id = unique('evict');
    const path = `/api/v1/analysis/${id}`;
    const { s } = await source(path, 22_050);
    const w = await open(path);
    w.send({ type: 'hello', role: 'watcher' });
    await w.next('ready');
    s.sendAudio(harmonicTone(22_050, 440, 0.5, 3, 0.4));
    await s.until(() => s.results().some((r) => r.t >= 0.45), 'first half');
    const lastSeq = s.results().at(-1)!.seq;
    const stub = env.ANALYSIS.get(env.ANALYSIS.idFromName(`stream:${id}`));
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    s.sendAudio(harmonicTone(22_050, 440, 0.5, 3, 0.4));
    const status = await s.next('status');
    expect(status.state).toBe('restarted');
    expect((await w.next('status')).state).toBe('restarted');
    await s.until(() => s.results().some((r) => r.seq > lastSeq + 5), 'results after the restart');
    const after = s.results().filter((r) => r.seq > lastSeq);
    expect(after[0].seq).toBeGreaterThan(lastSeq);
    // The stream clock continues from the last saved position, never from a later one.
    expect(after[0].t).toBeGreaterThanOrEqual(0);
    expect(after.some((r) => r.pitch?.note === 'A4')).toBe(true);
    s.send({ type: 'stats' });
    expect((await s.next('stats')).restarts).toBe(1);
    s.close();
    w.close();
  });
});

describe('a room-owned stream', () => {
  it('needs a live room and puts the room beat on onsets', async () => {
    expect((await api('/api/v1/rooms/ZZZZZZ/analysis/mic', { headers: { upgrade: 'websocket' } })).status).toBe(404);
    const room = await createRoom({ bpm: 120 });
    expect((await control(room.code, room.control_token, 'play', {})).status).toBe(200);
    const summary = await (await api(`/api/v1/rooms/${room.code}`)).json<{ anchor: { server_ms: number } }>();
    const playStart = summary.anchor.server_ms;
    const path = `/api/v1/rooms/${room.code}/analysis/mic`;
    // The source says its first sample was captured at the start of playback.
    const { s } = await source(path, 22_050, 'f32', { t0_server_ms: playStart });
    expect((await s.messages.find((m) => m.type === 'welcome')) as { room: string }).toMatchObject({ room: room.code });
    // At 120 BPM a beat is 0.5 s: clicks on beats 1, 2 and 2.5.
    const x = seededNoise(22_050 * 1.6, 8, 0.0005);
    for (const t of [0.5, 1.0, 1.25]) {
      const at = Math.round(t * 22_050);
      for (let i = 0; i < 200; i++) x[at + i] += 0.6 * Math.exp(-i / 40) * (i % 2 ? 1 : -1);
    }
    // Give the object a moment to fetch the room's anchor.
    await sleep(50);
    stream(s, x, 2205);
    await s.until(() => s.results().some((r) => r.t >= 1.5), 'the clicks');
    const withOnsets = s.results().filter((r) => r.onsets.length);
    const beats = withOnsets.flatMap((r) => r.onset_beats ?? []);
    expect(beats.length).toBe(3);
    [1, 2, 2.5].forEach((b, i) => expect(Math.abs(beats[i]! - b)).toBeLessThan(0.05));
    expect(typeof s.results().at(-1)!.beat).toBe('number');
    for (const text of s.texts) expect(JSON.stringify(JSON.parse(text))).toBe(text);
    s.close();
  });
});

describe('POST /api/v1/analyze', () => {
  it('returns the analysis document for a WAV body', async () => {
    const x = new Float32Array(22_050);
    x.set(harmonicTone(22_050, 523.25, 0.5, 4, 0.4, 0.01), 5512);
    const res = await api('/api/v1/analyze', { method: 'POST', body: encodeWav(x, 22_050, { bitDepth: 24, channels: 2 }), headers: { 'content-type': 'audio/wav' } });
    expect(res.status).toBe(200);
    const doc = await res.json<{ sample_rate: number; hop_s: number; frames: Array<{ t: number; f0: number | null; confidence: number; rms_db: number }>; onsets: number[] }>();
    expect(doc.sample_rate).toBe(22_050);
    expect(doc.hop_s).toBeCloseTo(256 / 22_050, 9);
    expect(doc.frames.length).toBe(Math.ceil(22_050 / 256));
    expect(doc.frames[0]).toEqual({ t: 0, f0: null, confidence: 0, rms_db: -120 });
    const mid = doc.frames.filter((f) => f.t > 0.35 && f.t < 0.65);
    for (const f of mid) expect(Math.abs(f.f0! - 523.25)).toBeLessThan(1);
    expect(doc.onsets.length).toBe(1);
    expect(Math.abs(doc.onsets[0] - 0.25)).toBeLessThan(0.02);
  });

  it('refuses what is not a WAV file, an empty body and a body over the limit', async () => {
    const notWav = await api('/api/v1/analyze', { method: 'POST', body: 'ID3 definitely an mp3' });
    expect(notWav.status).toBe(415);
    expect((await notWav.json<{ error: { code: string; message: string } }>()).error.message).toMatch(/not a WAV file/);
    const empty = await api('/api/v1/analyze', { method: 'POST' });
    expect(empty.status).toBe(400);
    const big = await api('/api/v1/analyze', { method: 'POST', body: new Uint8Array(10 * 1024 * 1024 + 1) });
    expect(big.status).toBe(413);
    const mulaw = encodeWav(new Float32Array(100), 8000);
    new DataView(mulaw.buffer).setUint16(20, 7, true);
    new DataView(mulaw.buffer).setUint16(34, 8, true);
    const res = await api('/api/v1/analyze', { method: 'POST', body: mulaw });
    expect(res.status).toBe(415);
    expect((await res.json<{ error: { message: string } }>()).error.message).toMatch(/mu-law/);
  });
});
