import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import { holdsLeases, leaseTags, releaseLease, releaseLeaseTag } from './connection-lease.ts';
import { constantTimeEqual, generateHexToken, hashToken } from '../lib/tokens.ts';
import { TokenBucket } from '../lib/rate.ts';
import { loadKissFFT } from '../../wasm/kissfft-workerd.ts';
import type { KissFFT } from '../../wasm/kissfft.ts';
import { AnalysisPipeline, type AnalysisFrame } from '../../wasm/dsp/pipeline.ts';
import { describePitch } from '../../wasm/dsp/notes.ts';
import { describeIssues, type ErrorCode } from '../protocol/index.ts';
import { beatsAtSample, sampleAt, type Anchor } from '../protocol/transport.ts';
import {
  ANALYSIS_BURST_S,
  ANALYSIS_CLIENT_TYPES,
  ANALYSIS_CLOSE,
  ANALYSIS_F32_MAX_MAGNITUDE,
  ANALYSIS_FORMATS,
  ANALYSIS_MAX_RATE,
  ANALYSIS_MIN_RATE,
  ANALYSIS_RESULT_INTERVAL_S,
  AnalysisPing,
  AnalysisSourceHello,
  AnalysisStatsRequest,
  AnalysisWatcherHello,
  MAX_ANALYSIS_FRAME_BYTES,
  MAX_ANALYSIS_TEXT_BYTES,
  type AnalysisErrorReason,
  type AnalysisFormat,
  type AnalysisResult,
  type AnalysisRole,
  type AnalysisServerMessage,
  type AnalysisStats,
} from '../protocol/analysis-messages.ts';

/**
 * Per-socket state that survives hibernation: the role and the declared
 * format, nothing else (the DSP buffers are memory only).
 */
interface SocketAttachment {
  role: AnalysisRole | null;
  sample_rate: number | null;
  format: AnalysisFormat | null;
  t0_server_ms: number | null;
  /** Stream sample at which this socket's audio began: `t0_server_ms` is the server time of that sample. */
  t0_sample?: number;
  /**
   * A source's resume token, hashed (SHA-256, hex): whoever presents the token
   * may replace this socket. Only the hash, so a leaked attachment or storage
   * dump cannot be replayed.
   */
  resume_hash?: string | null;
  joined_ms: number;
}

/** What the object keeps in storage: small, written every few seconds at most. */
interface StreamRecord {
  stream: string;
  room: string | null;
  /** Results are numbered below this; a restart continues from it, so seq never repeats. */
  seq_ceiling: number;
  /** Stream samples analysed up to the last save; a restart continues the stream clock from here. */
  samples_saved: number;
  restarts: number;
}

/** The source's analysis, in memory only. */
interface SourceState {
  ws: WebSocket;
  pipeline: AnalysisPipeline;
  sampleRate: number;
  format: AnalysisFormat;
  /** Stream sample at which this pipeline started (0, or the saved position after a restart). */
  base: number;
  t0ServerMs: number | null;
  /** Stream time (s) of the sample t0ServerMs refers to. */
  t0StreamS: number;
  scratch: Float32Array;
  /** Real time plus a burst, in samples. */
  rate: TokenBucket;
  tooFastInRow: number;
  /** The latest frame not yet sent, copied out of the pipeline's reused object. */
  pending: { t: number; hz: number; voiced: boolean; clarity: number; rms: number; peak: number; velocity: number } | null;
  pendingOnsets: number[];
  lastSentT: number;
  hopS: number;
  /** Server time when the current binary frame arrived, and the stream time of its end. */
  arrivalMs: number;
  arrivalEndT: number;
  /** The pipeline's frame callback, bound once: a closure per audio frame is garbage. */
  onFrame: (f: AnalysisFrame) => void;
}

const SEQ_BLOCK = 1000;
const SAVE_EVERY_MS = 5_000;
const ANCHOR_REFRESH_MS = 3_000;
/** Consecutive refused frames or messages before a socket is closed. */
const MAX_ERRORS_IN_ROW = 50;
/** Consecutive frames refused as too fast before the source is closed. */
const MAX_TOO_FAST_IN_ROW = 20;
const CLOSE_NORMAL = 1000;

export const STREAM_HEADER = 'x-roomtone-analysis-stream';
export const ROOM_HEADER = 'x-roomtone-analysis-room';

let kissPromise: Promise<KissFFT> | null = null;
function kiss(): Promise<KissFFT> {
  kissPromise ??= loadKissFFT();
  return kissPromise;
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;
const r6 = (v: number) => Math.round(v * 1e6) / 1e6;

/**
 * One live analysis stream: a source sends PCM, the object runs the shared
 * DSP pipeline (wasm/dsp) on it and sends pitch, onsets and dynamics to the
 * source and every watcher.
 *
 * Hibernation and eviction: the pipeline's buffers live in memory only (never
 * in attachments or storage). A source streams continuously, so the object
 * stays awake while it does; if the runtime evicts it anyway (a deploy, a
 * crash, or a source that went quiet long enough for the object to
 * hibernate), the next binary frame finds no pipeline, builds a new one from
 * the socket's attachment (role, rate, format) and everyone gets a
 * `status: restarted` frame. Pitch and onset history start again, `seq`
 * continues above everything sent before (it is reserved from storage in
 * blocks), and the stream clock `t` continues from the last saved position
 * (saved every few seconds, so it may step back by up to that much).
 */
export class AnalysisStream extends DurableObject<Env> {
  private record: StreamRecord | null = null;
  private kiss!: KissFFT;
  private source: SourceState | null = null;
  private seq = 0;
  private errorsInRow = new WeakMap<WebSocket, number>();
  /** Attachments read once per socket per wake-up (deserialising on every audio frame is not free). */
  private attachments = new WeakMap<WebSocket, SocketAttachment>();
  private counters = { frames: 0, results: 0, onsets: 0, clipped: 0 };
  /**
   * Sockets that said hello (the source and the watchers): who results go to.
   * Built from getWebSockets() once per wake-up, then kept up to date, so a
   * result does not enumerate and look up every socket of the object.
   */
  private members: WebSocket[] | null = null;
  /**
   * Sockets accepted without hibernation (a client that connects as a source,
   * `?role=source`), with the connection lease each holds ('' for none). A
   * source streams without pause and keeps the object awake anyway, so it
   * gains nothing from hibernation, and its results come back sooner on a
   * plain socket: 50 streams on the local runtime answered at a median of
   * 18–30 ms against 206–277 ms through the hibernation API, for about the
   * same CPU (bench/RESULTS.md, per-stream server cost). The object's memory
   * is then all there is: an eviction closes these sockets, and the source
   * reconnects.
   */
  private plain = new Map<WebSocket, string>();
  private dropped: Partial<Record<AnalysisErrorReason, number>> = {};
  private lastSaveMs = 0;
  private anchor: { anchor: Anchor | null; fetchedMs: number; inFlight: boolean } = { anchor: null, fetchedMs: 0, inFlight: false };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      // KissFFT is instantiated before any message is delivered, so starting
      // a source never awaits and audio cannot slip in while it starts.
      this.kiss = await kiss();
      this.record = (await ctx.storage.get<StreamRecord>('stream')) ?? null;
      if (this.record) {
        // Everything below the ceiling may have been sent before the restart.
        this.seq = this.record.seq_ceiling;
      }
    });
  }

  // ---- WebSocket entry points: thin, then a named hook ----

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json({ error: { code: 'bad_request', message: 'expected a WebSocket upgrade' } }, { status: 426 });
    }
    const stream = request.headers.get(STREAM_HEADER);
    if (!stream) return Response.json({ error: { code: 'bad_request', message: 'no stream name' } }, { status: 400 });
    const room = request.headers.get(ROOM_HEADER) || null;
    await this.ensureRecord(stream, room);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    if (new URL(request.url).searchParams.get('role') === 'source') {
      // Binary frames as ArrayBuffers, as the hibernation API delivers them (a plain socket's default is Blob).
      server.binaryType = 'arraybuffer';
      server.accept();
      this.plain.set(server, leaseTags(request)[0] ?? '');
      server.addEventListener('message', (e) => void this.webSocketMessage(server, e.data as string | ArrayBuffer));
      server.addEventListener('close', (e) => void this.webSocketClose(server, e.code, e.reason));
      server.addEventListener('error', () => void this.webSocketError(server));
    } else {
      this.ctx.acceptWebSocket(server, leaseTags(request));
    }
    this.setAttachment(server, { role: null, sample_rate: null, format: null, t0_server_ms: null, joined_ms: Date.now() });
    this.onConnect(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> | void {
    const received = Date.now();
    if (typeof message === 'string') return this.onText(ws, message, received);
    return this.onAudio(ws, message, received);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.release(ws);
    await this.onClose(ws);
    try {
      ws.close(code === 1005 ? CLOSE_NORMAL : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    this.release(ws);
    await this.onClose(ws);
  }

  async holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]> {
    return holdsLeases(this.ctx, limiterId, leases, this.plain.values());
  }

  /** Gives a closed socket's connection lease back, whichever way it was accepted. */
  private release(ws: WebSocket): void {
    const tag = this.plain.get(ws);
    if (tag === undefined) return releaseLease(this.ctx, this.env, ws);
    this.plain.delete(ws);
    releaseLeaseTag(this.ctx, this.env, tag);
  }

  /** Every open socket: the hibernatable ones the runtime keeps and the plain ones held here. */
  private sockets(): WebSocket[] {
    const all = this.ctx.getWebSockets();
    for (const ws of this.plain.keys()) all.push(ws);
    return all;
  }

  // ---- hooks ----

  private onConnect(ws: WebSocket): void {
    const rec = this.record!;
    this.send(ws, {
      type: 'welcome',
      stream: rec.stream,
      room: rec.room,
      server_ms: Date.now(),
      limits: {
        sample_rates: [ANALYSIS_MIN_RATE, ANALYSIS_MAX_RATE],
        formats: ANALYSIS_FORMATS,
        max_frame_bytes: MAX_ANALYSIS_FRAME_BYTES,
        burst_s: ANALYSIS_BURST_S,
        result_interval_s: ANALYSIS_RESULT_INTERVAL_S,
      },
    });
  }

  private async onText(ws: WebSocket, text: string, received: number): Promise<void> {
    if (text.length > MAX_ANALYSIS_TEXT_BYTES) return this.refuse(ws, 'too_large', 'bad_message', `text messages are limited to ${MAX_ANALYSIS_TEXT_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.refuse(ws, 'bad_json', 'bad_message', 'message is not valid JSON');
    }
    const type = (raw as { type?: unknown } | null)?.type;
    // A request id is the client's correlation handle and comes back as such, but only one of the shape requests allow.
    const rawId = (raw as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'string' && rawId.length >= 1 && rawId.length <= 64 ? rawId : null;
    if (typeof type !== 'string' || !(ANALYSIS_CLIENT_TYPES as readonly string[]).includes(type)) {
      return this.refuse(ws, 'unknown_type', 'bad_message', `unknown message type; expected one of ${ANALYSIS_CLIENT_TYPES.join(', ')}`, id);
    }
    switch (type) {
      case 'ping': {
        const p = AnalysisPing.safeParse(raw);
        if (!p.success) return this.refuse(ws, 'bad_request', 'bad_message', `invalid ping: ${describeIssues(p.error).join('; ')}`, id);
        this.errorsInRow.delete(ws);
        this.send(ws, { type: 'pong', id, t0: p.data.t0 ?? null, t1: received, t2: Date.now() });
        return;
      }
      case 'stats': {
        const p = AnalysisStatsRequest.safeParse(raw);
        if (!p.success) return this.refuse(ws, 'bad_request', 'bad_message', `invalid stats request: ${describeIssues(p.error).join('; ')}`, id);
        this.errorsInRow.delete(ws);
        this.send(ws, this.stats(id));
        return;
      }
      default:
        return this.onHello(ws, raw, id);
    }
  }

  private async onHello(ws: WebSocket, raw: unknown, id: string | null): Promise<void> {
    const att = this.attachment(ws);
    if (att.role) return this.refuse(ws, 'invalid_state', 'hello_repeated', `this socket is already a ${att.role}; open another socket for another role`, id);
    const role = (raw as { role?: unknown }).role;
    if (role === 'watcher') {
      const p = AnalysisWatcherHello.safeParse(raw);
      if (!p.success) return this.refuse(ws, 'bad_request', 'bad_message', `invalid hello: ${describeIssues(p.error).join('; ')}`, id);
      att.role = 'watcher';
      this.setAttachment(ws, att);
      this.addMember(ws);
      this.errorsInRow.delete(ws);
      const src = this.source;
      const cfg = src?.pipeline.config;
      this.send(ws, {
        type: 'ready',
        id,
        role: 'watcher',
        sample_rate: src?.sampleRate ?? null,
        format: src?.format ?? null,
        window: cfg?.windowSize ?? null,
        hop: cfg?.hopSize ?? null,
        hop_s: cfg ? cfg.hopSize / cfg.sampleRate : null,
        seq: this.seq,
      });
      return;
    }
    if (role !== 'source') {
      return this.refuse(ws, 'bad_request', 'bad_message', 'hello needs role "source" (with sample_rate and format) or "watcher"', id);
    }
    const p = AnalysisSourceHello.safeParse(raw);
    if (!p.success) return this.refuse(ws, 'bad_request', 'bad_message', `invalid hello: ${describeIssues(p.error).join('; ')}`, id);
    const { sample_rate, format } = p.data;
    if (!(ANALYSIS_FORMATS as readonly string[]).includes(format)) {
      return this.refuse(ws, 'unsupported', 'unsupported_format', 'unsupported format; send "f32" or "s16" (little-endian, mono)', id);
    }
    if (sample_rate < ANALYSIS_MIN_RATE || sample_rate > ANALYSIS_MAX_RATE) {
      return this.refuse(ws, 'unsupported', 'unsupported_rate', `sample rate ${sample_rate} Hz is not supported; use ${ANALYSIS_MIN_RATE} to ${ANALYSIS_MAX_RATE} Hz`, id);
    }
    // Hashing is the only wait: every decision below is taken after it, without
    // yielding, so two hellos cannot both take the role.
    const presented = p.data.resume_token ? await hashToken(p.data.resume_token) : null;
    const token = generateHexToken(16);
    const tokenHash = await hashToken(token);
    if (att.role) return this.refuse(ws, 'invalid_state', 'hello_repeated', `this socket is already a ${att.role}; open another socket for another role`, id);
    const live = this.liveSource();
    if (live && live !== ws) {
      const stale = this.attachment(live).resume_hash;
      if (!presented || !stale || !constantTimeEqual(presented, stale)) {
        return this.refuse(ws, 'conflict', 'source_taken', 'this stream already has a source; connect as a watcher or use another stream (a source coming back after a drop presents its resume_token)', id);
      }
      this.replaceSource(live);
    }
    const rec = this.record!;
    att.role = 'source';
    att.sample_rate = sample_rate;
    att.format = format as AnalysisFormat;
    att.t0_server_ms = p.data.t0_server_ms ?? null;
    att.t0_sample = rec.samples_saved;
    att.resume_hash = tokenHash;
    this.setAttachment(ws, att);
    this.addMember(ws);
    this.errorsInRow.delete(ws);
    const src = this.startSource(ws, att, rec.samples_saved);
    const cfg = src.pipeline.config;
    this.send(ws, {
      type: 'ready',
      id,
      role: 'source',
      sample_rate,
      format: att.format,
      window: cfg.windowSize,
      hop: cfg.hopSize,
      hop_s: cfg.hopSize / sample_rate,
      seq: this.seq,
      resume_token: token,
      start_t: rec.samples_saved / sample_rate,
    });
    this.broadcast({ type: 'status', state: 'source_joined', message: `a source joined at ${sample_rate} Hz ${format}`, seq: this.seq, sample_rate }, ws);
  }

  /** Synchronous unless the object restarted or the stream position is due to be saved. */
  private onAudio(ws: WebSocket, data: ArrayBuffer, received: number): Promise<void> | void {
    const att = this.attachment(ws);
    if (att.role !== 'source') {
      if (att.role === 'watcher') return this.refuse(ws, 'forbidden', 'not_source', 'watchers cannot send audio');
      return this.refuse(ws, 'invalid_state', 'hello_required', 'send {"type":"hello","role":"source","sample_rate":…,"format":"f32"|"s16"} before audio');
    }
    let src = this.source;
    if (!src || src.ws !== ws) {
      // The object restarted (eviction, deploy) while this source streamed:
      // the DSP state is gone. Rebuild it from the attachment and say so.
      return this.restartAndAnalyse(ws, att, data, received);
    }
    return this.analyse(ws, src, data, received);
  }

  private async restartAndAnalyse(ws: WebSocket, att: SocketAttachment, data: ArrayBuffer, received: number): Promise<void> {
    const rec = this.record!;
    rec.restarts++;
    const src = this.startSource(ws, att, rec.samples_saved);
    await this.save(true);
    this.broadcast({
      type: 'status',
      state: 'restarted',
      message: 'the analysis restarted (the stream object was evicted or restarted): pitch and onset history begin again; seq continues',
      seq: this.seq,
      sample_rate: src.sampleRate,
    });
    await this.analyse(ws, src, data, received);
  }

  private analyse(ws: WebSocket, src: SourceState, data: ArrayBuffer, received: number): Promise<void> | void {
    const bytes = data.byteLength;
    const width = src.format === 'f32' ? 4 : 2;
    if (bytes > MAX_ANALYSIS_FRAME_BYTES) return this.refuse(ws, 'too_large', 'frame_too_large', `binary frames are limited to ${MAX_ANALYSIS_FRAME_BYTES} bytes; split the audio`);
    if (bytes % width !== 0) return this.refuse(ws, 'bad_request', 'odd_byte_count', `a ${src.format} frame must hold whole ${width}-byte samples; got ${bytes} bytes`);
    const n = bytes / width;
    if (n === 0) return;
    if (!src.rate.has(n, received)) {
      src.tooFastInRow++;
      const closing = src.tooFastInRow >= MAX_TOO_FAST_IN_ROW;
      this.refuse(ws, 'rate_limited', 'too_fast', `audio is arriving faster than real time beyond the ${ANALYSIS_BURST_S} s burst allowance; frame of ${n} samples dropped`, null, closing);
      if (closing) this.close(ws, ANALYSIS_CLOSE.too_fast, 'audio faster than real time');
      return;
    }
    const x = src.scratch.subarray(0, n);
    let clipped = 0;
    if (src.format === 'f32') {
      const f = new Float32Array(data, 0, n);
      // The first sample too far out, if any; NaN or ±Inf anywhere in the frame takes precedence.
      let wild = -1;
      for (let i = 0; i < n; i++) {
        const v = f[i];
        if (v >= -1 && v <= 1) {
          x[i] = v;
          continue;
        }
        if (v - v !== 0) return this.refuse(ws, 'bad_request', 'non_finite_samples', `sample ${i} of the frame is ${String(v)}; frames must hold finite numbers (the frame was dropped)`);
        if ((v > ANALYSIS_F32_MAX_MAGNITUDE || v < -ANALYSIS_F32_MAX_MAGNITUDE) && wild < 0) wild = i;
        x[i] = v > 0 ? 1 : -1;
        clipped++;
      }
      if (wild >= 0) {
        return this.refuse(ws, 'bad_request', 'samples_out_of_range', `sample ${wild} of the frame lies beyond ±${ANALYSIS_F32_MAX_MAGNITUDE}: f32 audio is full scale at ±1, and this is not audio at that scale (integer PCM sent as f32?); the frame was dropped`);
      }
    } else {
      const s = new Int16Array(data, 0, n);
      for (let i = 0; i < n; i++) x[i] = s[i] / 32768;
    }
    this.counters.clipped += clipped;
    src.rate.take(received, n);
    src.tooFastInRow = 0;
    this.errorsInRow.delete(ws);
    src.arrivalMs = received;
    src.arrivalEndT = (src.base + src.pipeline.samplesIn + n) / src.sampleRate;
    src.pipeline.push(x, src.onFrame);
    if (src.pending) this.emit(src);
    if (this.saveDue()) return this.save(false);
  }

  /**
   * Ends a source whose link died silently, for the same source reconnecting:
   * synchronously, so the new source starts from where this one stopped and
   * watchers see no `source_left` after the new `source_joined`. The socket
   * may never answer a close, so it also loses its role and its plain
   * socket's lease here, not in its close handler.
   */
  private replaceSource(ws: WebSocket): void {
    const att = this.attachment(ws);
    att.role = null;
    att.resume_hash = null;
    try {
      this.setAttachment(ws, att);
    } catch {
      // a closed hibernatable socket takes no attachment; the memory copy is what counts
      this.attachments.set(ws, att);
    }
    void this.forget(ws);
    if (this.plain.has(ws)) this.release(ws);
    try {
      ws.close(ANALYSIS_CLOSE.replaced, 'replaced by the same source reconnecting');
    } catch {
      // already closed
    }
  }

  private async onClose(ws: WebSocket): Promise<void> {
    this.errorsInRow.delete(ws);
    if (await this.forget(ws)) {
      this.broadcast({ type: 'status', state: 'source_left', message: 'the source disconnected', seq: this.seq, sample_rate: null }, ws);
    }
  }

  /**
   * Drops a socket from the members; if it was the source, flushes its last
   * result and ends the source where it stopped (synchronously: a replacing
   * source starts from there). Resolves true, once saved, if it was the source.
   */
  private async forget(ws: WebSocket): Promise<boolean> {
    if (this.members) {
      const i = this.members.indexOf(ws);
      if (i >= 0) this.members.splice(i, 1);
    }
    const src = this.source;
    if (!src || src.ws !== ws) return false;
    if (src.pending) this.emit(src);
    this.source = null;
    this.record!.samples_saved = src.base + src.pipeline.samplesIn;
    src.pipeline.dispose();
    await this.save(true);
    return true;
  }

  // ---- analysis ----

  private startSource(ws: WebSocket, att: SocketAttachment, base: number): SourceState {
    const k = this.kiss;
    if (this.source) {
      this.source.pipeline.dispose();
      this.source = null;
    }
    const rate = att.sample_rate!;
    const pipeline = AnalysisPipeline.fromPreset(k, 'config_default', rate);
    const now = Date.now();
    const src: SourceState = {
      ws,
      pipeline,
      sampleRate: rate,
      format: att.format!,
      base,
      t0ServerMs: att.t0_server_ms,
      t0StreamS: (att.t0_sample ?? 0) / rate,
      scratch: new Float32Array(MAX_ANALYSIS_FRAME_BYTES / 2),
      rate: new TokenBucket(rate, rate * ANALYSIS_BURST_S, now),
      tooFastInRow: 0,
      pending: null,
      pendingOnsets: [],
      lastSentT: -Infinity,
      hopS: pipeline.config.hopSize / rate,
      arrivalMs: now,
      arrivalEndT: base / rate,
      onFrame: (f) => this.onFrame(src, f),
    };
    this.source = src;
    if (this.record!.room) void this.refreshAnchor(true);
    return src;
  }

  private onFrame(src: SourceState, f: AnalysisFrame): void {
    this.counters.frames++;
    const t = (src.base + f.sample) / src.sampleRate;
    if (f.onsetCount) {
      this.counters.onsets++;
      src.pendingOnsets.push((src.base + f.onsetSample) / src.sampleRate);
    }
    const p = (src.pending ??= { t: 0, hz: 0, voiced: false, clarity: 0, rms: 0, peak: 0, velocity: 0 });
    p.t = t;
    p.hz = f.pitch.hz;
    p.voiced = f.pitch.voiced;
    p.clarity = f.pitch.clarity;
    p.rms = f.dynamics.rmsDb;
    p.peak = f.dynamics.peakDb;
    p.velocity = f.dynamics.velocity;
    // A long frame of audio still yields a result at least every RESULT_INTERVAL
    // of it: send now if waiting for the next frame would overshoot.
    if (t - src.lastSentT + src.hopS > ANALYSIS_RESULT_INTERVAL_S + 1e-9) this.emit(src);
  }

  private emit(src: SourceState): void {
    const p = src.pending;
    if (!p) return;
    src.pending = null;
    src.lastSentT = p.t;
    // The result is written as JSON directly: every field is a number, null or
    // a note name, and building an object to stringify it cost more than the
    // rest of the message's handling. Same text as JSON.stringify of an
    // AnalysisResult (tests parse it as one).
    let pitch = 'null';
    if (p.voiced) {
      const d = describePitch(p.hz);
      pitch = `{"hz":${Math.round(p.hz * 100) / 100},"note":"${d.note}","cents":${d.cents},"confidence":${r3(p.clarity)}}`;
    }
    const onsets = src.pendingOnsets;
    let list = '';
    for (let i = 0; i < onsets.length; i++) list += (i ? ',' : '') + r6(onsets[i]);
    let text = `{"type":"analysis","seq":${++this.seq},"t":${r6(p.t)},"pitch":${pitch},"onsets":[${list}],"dynamics":{"rms_db":${Math.round(p.rms * 100) / 100},"peak_db":${Math.round(p.peak * 100) / 100},"velocity":${p.velocity}}`;
    if (this.record!.room) {
      let beats = '';
      for (let i = 0; i < onsets.length; i++) beats += (i ? ',' : '') + String(this.beatAt(src, onsets[i]));
      text += `,"beat":${String(this.beatAt(src, p.t))},"onset_beats":[${beats}]`;
      if (Date.now() - this.anchor.fetchedMs > ANCHOR_REFRESH_MS) void this.refreshAnchor(false);
    }
    text += '}';
    onsets.length = 0;
    this.counters.results++;
    this.broadcastText(text);
  }

  /** The room's beat position at stream time t, or null while the room's anchor is unknown. */
  private beatAt(src: SourceState, t: number): number | null {
    const a = this.anchor.anchor;
    if (!a) return null;
    // The source may say when the first sample of its connection was captured; otherwise the end
    // of the frame being analysed is taken to have been captured on arrival.
    const serverMs = src.t0ServerMs !== null ? src.t0ServerMs + (t - src.t0StreamS) * 1000 : src.arrivalMs - (src.arrivalEndT - t) * 1000;
    return r3(beatsAtSample(a, sampleAt(a, serverMs)));
  }

  private async refreshAnchor(force: boolean): Promise<void> {
    const room = this.record?.room;
    if (!room || this.anchor.inFlight) return;
    if (!force && Date.now() - this.anchor.fetchedMs < ANCHOR_REFRESH_MS) return;
    this.anchor.inFlight = true;
    try {
      const summary = await this.env.TRANSPORT.get(this.env.TRANSPORT.idFromName(room)).summary();
      this.anchor.anchor = summary?.anchor ?? null;
    } catch {
      // keep the last anchor; try again after the refresh period
    } finally {
      this.anchor.fetchedMs = Date.now();
      this.anchor.inFlight = false;
    }
  }

  // ---- plumbing ----

  private async ensureRecord(stream: string, room: string | null): Promise<void> {
    if (this.record) return;
    this.record = { stream, room, seq_ceiling: SEQ_BLOCK, samples_saved: 0, restarts: 0 };
    this.seq = 0;
    await this.ctx.storage.put('stream', this.record);
  }

  /** Whether save(false) would write now (checked before calling it, so most frames need no promise). */
  private saveDue(): boolean {
    const rec = this.record;
    if (!rec) return false;
    return this.seq + SEQ_BLOCK / 10 >= rec.seq_ceiling || Date.now() - this.lastSaveMs >= SAVE_EVERY_MS;
  }

  /** Persists the seq block and stream position: at once when forced or when seq nears its ceiling, else every few seconds. */
  private async save(force: boolean): Promise<void> {
    const rec = this.record;
    if (!rec) return;
    const now = Date.now();
    const nearCeiling = this.seq + SEQ_BLOCK / 10 >= rec.seq_ceiling;
    if (!force && !nearCeiling && now - this.lastSaveMs < SAVE_EVERY_MS) return;
    if (nearCeiling) rec.seq_ceiling = this.seq + SEQ_BLOCK;
    if (this.source) rec.samples_saved = this.source.base + this.source.pipeline.samplesIn;
    this.lastSaveMs = now;
    await this.ctx.storage.put('stream', rec);
  }

  private stats(id: string | null): AnalysisStats {
    const rec = this.record!;
    const src = this.source;
    let watchers = 0;
    for (const ws of this.sockets()) if (this.attachment(ws).role === 'watcher') watchers++;
    const samples = src ? src.base + src.pipeline.samplesIn : rec.samples_saved;
    const rate = src?.sampleRate ?? null;
    return {
      type: 'stats',
      id,
      stream: rec.stream,
      room: rec.room,
      source_connected: this.liveSource() !== null,
      watchers,
      sample_rate: rate,
      format: src?.format ?? null,
      seconds_in: rate ? samples / rate : 0,
      samples_in: samples,
      frames: this.counters.frames,
      clipped_samples: this.counters.clipped,
      results_sent: this.counters.results,
      onsets: this.counters.onsets,
      seq: this.seq,
      dropped: { ...this.dropped },
      restarts: rec.restarts,
      server_ms: Date.now(),
    };
  }

  /** The socket holding the source role, if it is still open. */
  private liveSource(): WebSocket | null {
    for (const ws of this.sockets()) if (this.attachment(ws).role === 'source') return ws;
    return null;
  }

  private attachment(ws: WebSocket): SocketAttachment {
    let a = this.attachments.get(ws);
    if (!a) {
      a = (ws.deserializeAttachment() as SocketAttachment | null) ?? { role: null, sample_rate: null, format: null, t0_server_ms: null, joined_ms: 0 };
      this.attachments.set(ws, a);
    }
    return a;
  }

  private setAttachment(ws: WebSocket, a: SocketAttachment): void {
    // A plain socket does not outlive the object: memory is enough.
    if (!this.plain.has(ws)) ws.serializeAttachment(a);
    this.attachments.set(ws, a);
  }

  private refuse(ws: WebSocket, code: ErrorCode, reason: AnalysisErrorReason, message: string, id: string | null = null, closing = false): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    const inRow = (this.errorsInRow.get(ws) ?? 0) + 1;
    this.errorsInRow.set(ws, inRow);
    const close = closing || inRow >= MAX_ERRORS_IN_ROW;
    this.send(ws, { type: 'error', code, reason, message, id, ...(close ? { closing: true } : {}) });
    if (close && !closing) this.close(ws, ANALYSIS_CLOSE.misbehaving, `${MAX_ERRORS_IN_ROW} refused messages in a row`);
  }

  private close(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
    void this.onClose(ws);
  }

  private send(ws: WebSocket, msg: AnalysisServerMessage): void {
    try {
      ws.send(JSON.stringify(msg));
    } catch {
      // the socket is closing; its close handler cleans up
    }
  }

  /** To the source and every watcher (undecided sockets get nothing until their hello). */
  private broadcast(msg: AnalysisServerMessage, except?: WebSocket): void {
    this.broadcastText(JSON.stringify(msg), except);
  }

  private broadcastText(text: string, except?: WebSocket): void {
    const members = this.memberList();
    for (let i = 0; i < members.length; i++) {
      const ws = members[i];
      if (ws === except) continue;
      try {
        ws.send(text);
      } catch {
        // closing
      }
    }
  }

  private memberList(): WebSocket[] {
    if (!this.members) {
      // After a wake-up: the sockets the runtime kept, with the roles their attachments hold.
      this.members = [];
      for (const ws of this.sockets()) if (this.attachment(ws).role) this.members.push(ws);
    }
    return this.members;
  }

  private addMember(ws: WebSocket): void {
    const members = this.memberList();
    if (!members.includes(ws)) members.push(ws);
  }
}
