import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import { numberVar } from '../lib/env-vars.ts';
import { holdsLeases, leaseTags, releaseLease } from './connection-lease.ts';
import { TokenBucket } from '../lib/rate.ts';
import { loadKissFFT } from '../../wasm/kissfft-workerd.ts';
import { FINGERPRINT_PRESETS, LiveMatcher, MATCH_PRESETS, type LiveMatch } from '../../wasm/fingerprint/index.ts';
import { lookupCatalog, registry } from '../lib/catalog.ts';
import { MAX_BATCH_S, PendingAudio } from './pending-audio.ts';
import {
  CLIENT_ID_PATTERN,
  MATCH_CLIENT_TYPES,
  MATCH_CLOSE,
  MAX_MATCH_FRAME_BYTES,
  MATCH_BATCH_S,
  MAX_MATCH_TEXT_BYTES,
  maxMatchFrameS,
  MatchClientMessage,
  describeIssues,
  type ErrorCode,
  type LiveStreamDetail,
  type LiveStreamSummary,
  type MatchData,
  type MatchFormat,
  type MatchServerMessage,
  type MatchStatusData,
  type Track,
} from '../protocol/index.ts';

/** Per-socket state that survives hibernation: the declared format only. */
interface StreamAttachment {
  client_id: string;
  connected_ms: number;
  sample_rate: number | null;
  format: MatchFormat | null;
}

/** Per-socket state in memory: the matcher and its buffers (rebuilt from the attachment after hibernation). */
interface Live {
  /** The socket's attachment as of hello, after which it does not change: read per frame without deserialising it. */
  attachment: StreamAttachment;
  matcher: LiveMatcher;
  /** The loop handing pending audio to the matcher, while it runs (see pump). */
  pumping: Promise<void> | null;
  /** The socket is gone: the pump stops and the matcher is freed. */
  closed: boolean;
  /** Audio received and not yet matched (pending or being matched). */
  queuedS: number;
  /** Frames received but not yet handed to the matcher (see batchSeconds). */
  pending: PendingAudio;
  /** Binary frames received (see LiveStreamDetail.frames). */
  frames: number;
  /** Audio-rate allowance in seconds of audio, refilled at real time up to the burst. */
  rate: TokenBucket;
  lastStatusS: number;
  /** The frame length last advised to the client (`frame_s`). */
  advisedFrameS: number;
  lastRegistryS: number;
  match: MatchData | null;
  matchesReported: number;
}

const STATUS_EVERY_S = 2;
/** Audio waiting to be matched may not exceed this; a faster sender gets frames dropped with an error. */
const MAX_QUEUED_S = 30;
const MAX_ERRORS = 20;
const TRACK_CACHE_MS = 5_000;
/**
 * The batch while no decision is near: the stream's track is known, or
 * nothing has been known for a whole vote window. A round trip to the
 * shards costs the local runtime ~0.4 ms of CPU per shard whatever it
 * carries (~0.9 ms paced at real time). Once decided, the matcher pairs one
 * speed hypothesis and sends a fifth of the hashes: at 0.5 s that fixed
 * cost was about a third of a matched stream's CPU. A monitored stream
 * spends most of its life on talk, adverts and music outside the catalog,
 * searching every speed: four such streams cost 12.3 and 11.2 ms per second
 * of audio with 1 s batches, 10.4 and 9.4 with 2 s ones. Decisions still
 * come every 0.1 s of audio, so `audio_s` does not change; news may reach
 * the client up to 1.5 s later in wall time, and a new track at another
 * speed after a decided one may take up to 1.5 s more audio, as a batch is
 * fingerprinted with the speeds searched when it began. When a decision
 * lapses, batches are short again for a window.
 */
const LONG_BATCH_S = 2;

/**
 * Audio is matched in batches: one lookup (one RPC per shard) per batch
 * instead of one per client frame, MATCH_BATCH_S while a decision may be
 * near. The matcher still decides every 0.1 s of audio inside a batch, so
 * `audio_s` of a match does not change; only its wall-clock arrival may lag
 * by up to a batch.
 */
function batchSeconds(m: LiveMatcher): number {
  return m.decided || m.longUnknown ? LONG_BATCH_S : MATCH_BATCH_S;
}

/**
 * The frame advised to the client: the batch its audio is matched in now,
 * within the frame limit of its rate and format (2 s of 48 kHz f32 would not
 * fit).
 */
function frameSeconds(a: StreamAttachment, m: LiveMatcher): number {
  return Math.min(batchSeconds(m), maxMatchFrameS(a.sample_rate!, a.format!));
}

/** Audio a stream may send ahead of real time (seconds of audio), unless MATCH_BURST_S says otherwise. */
const DEFAULT_BURST_S = 12;

/**
 * One live identification stream (`WS /api/v1/match/:client_id`): PCM in,
 * match decisions out. The catalog is looked up chunk by chunk across the
 * shards; only tracks the registry calls ready are ever reported.
 */
export class MatchStream extends DurableObject<Env> {
  private live = new Map<WebSocket, Live>();
  private errors = new WeakMap<WebSocket, number>();
  private trackCache = new Map<number, { track: Track | null; at: number }>();

  // ---- RPC from the worker (monitoring) ----

  async describe(): Promise<LiveStreamDetail | null> {
    const ws = this.ctx.getWebSockets()[0];
    if (!ws) return null;
    const a = this.attachment(ws);
    const live = this.live.get(ws);
    return {
      ...this.summary(a, live),
      landmarks: live?.matcher.landmarks ?? 0,
      lookups: live?.matcher.lookups ?? 0,
      lookup_rounds: live?.matcher.lookupRounds ?? 0,
      speeds_searched: live?.matcher.fingerprinter.activeSpeeds ?? 0,
      frames: live?.frames ?? 0,
      matches_reported: live?.matchesReported ?? 0,
      errors_sent: this.errors.get(ws) ?? 0,
      queued_s: Math.round((live?.queuedS ?? 0) * 1000) / 1000,
    };
  }

  /** Closes the stream (admin); false when nothing was connected. */
  async disconnect(): Promise<boolean> {
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) {
      this.sendError(ws, 'gone', 'disconnected by an administrator');
      ws.close(MATCH_CLOSE.disconnected, 'disconnected by an administrator');
      await this.onClose(ws);
    }
    return sockets.length > 0;
  }

  // ---- entry points: thin, then a named hook ----

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json({ error: { code: 'bad_request', message: 'expected a WebSocket upgrade' } }, { status: 426 });
    }
    const clientId = decodeURIComponent(new URL(request.url).pathname.split('/').pop() ?? '');
    if (!CLIENT_ID_PATTERN.test(clientId)) {
      return Response.json({ error: { code: 'bad_request', message: 'client ids are 1-64 letters, digits, _ or -' } }, { status: 400 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    await this.onConnect(server, clientId, leaseTags(request));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message === 'string') await this.onText(ws, message);
    else await this.onAudio(ws, message);
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    await this.onClose(ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    releaseLease(this.ctx, this.env, ws);
    await this.onClose(ws);
  }

  async holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]> {
    return holdsLeases(this.ctx, limiterId, leases);
  }

  // ---- hooks ----

  private async onConnect(ws: WebSocket, clientId: string, tags: string[]): Promise<void> {
    // One stream per client id: a new connection replaces the old one.
    for (const old of this.ctx.getWebSockets()) {
      this.sendError(old, 'conflict', 'another connection took over this client id');
      old.close(MATCH_CLOSE.replaced, 'replaced by a new connection');
      this.dropLive(old);
    }
    this.ctx.acceptWebSocket(ws, tags);
    const a: StreamAttachment = { client_id: clientId, connected_ms: Date.now(), sample_rate: null, format: null };
    ws.serializeAttachment(a);
    await this.publish(a, undefined);
  }

  private async onText(ws: WebSocket, text: string): Promise<void> {
    if (text.length > MAX_MATCH_TEXT_BYTES) return this.sendError(ws, 'too_large', `text messages are limited to ${MAX_MATCH_TEXT_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.sendError(ws, 'bad_json', 'message is not valid JSON');
    }
    const parsed = MatchClientMessage.safeParse(raw);
    if (!parsed.success) {
      const type = (raw as { type?: unknown } | null)?.type;
      if (typeof type !== 'string' || !(MATCH_CLIENT_TYPES as readonly string[]).includes(type)) {
        // Say what was wrong, never what was sent: a client's text is not echoed.
        return this.sendError(ws, 'unknown_type', `unknown or missing message type; expected one of ${MATCH_CLIENT_TYPES.join(', ')}`);
      }
      return this.sendError(ws, 'bad_request', `invalid ${type}: ${describeIssues(parsed.error).join('; ')}`);
    }
    const msg = parsed.data;
    const a = this.attachment(ws);
    if (msg.type === 'hello') {
      if (a.sample_rate !== null) return this.sendError(ws, 'invalid_state', 'hello was already sent; reconnect to change the format');
      a.sample_rate = msg.sample_rate;
      a.format = msg.format;
      ws.serializeAttachment(a);
      const live = await this.liveFor(ws, a);
      this.send(ws, { type: 'ready', data: { client_id: a.client_id, sample_rate: msg.sample_rate, format: msg.format, burst_s: this.burstS(), frame_s: live.advisedFrameS } });
      await this.publish(a, this.live.get(ws));
      return;
    }
    // end: answer once everything sent before it has been matched.
    const live = this.live.get(ws);
    if (live) {
      live.pending.drain();
      await this.pump(ws, a, live);
    }
    this.send(ws, { type: 'ended', data: this.status(a, live) });
  }

  private async onAudio(ws: WebSocket, data: ArrayBuffer): Promise<void> {
    const known = this.live.get(ws);
    const a = known?.attachment ?? this.attachment(ws);
    if (a.sample_rate === null || a.format === null) return this.sendError(ws, 'invalid_state', 'send a hello with sample_rate and format before audio');
    if (data.byteLength > MAX_MATCH_FRAME_BYTES) return this.sendError(ws, 'too_large', `audio frames are limited to ${MAX_MATCH_FRAME_BYTES} bytes`);
    const width = a.format === 'f32' ? 4 : 2;
    if (data.byteLength === 0 || data.byteLength % width !== 0) {
      return this.sendError(ws, 'bad_request', `an ${a.format} frame must be a whole, non-zero number of ${width}-byte samples`);
    }
    const samples = decodePcm(data, a.format);
    if (!samples) return this.sendError(ws, 'bad_request', 'the frame holds samples that are not finite numbers');
    const live = known ?? (await this.liveFor(ws, a));
    const seconds = samples.length / a.sample_rate;
    // Real time plus a burst, as for analysis streams: a live source cannot
    // run ahead of the clock, and a client that does makes the object match
    // audio faster than anyone is listening to it.
    const now = Date.now();
    if (!live.rate.has(seconds, now)) {
      return this.sendError(ws, 'rate_limited', `audio is arriving faster than real time beyond the ${live.rate.burst} s burst allowance; frame dropped`);
    }
    if (live.queuedS + seconds > MAX_QUEUED_S) {
      return this.sendError(ws, 'rate_limited', `more than ${MAX_QUEUED_S} s of audio waiting to be matched; frame dropped`);
    }
    live.rate.take(now, seconds);
    live.frames++;
    live.queuedS += seconds;
    live.pending.add(samples);
    if (!live.pumping && live.pending.due(batchSeconds(live.matcher))) void this.pump(ws, a, live);
    // The socket's next message comes once this handler is done: one batch at most waits unread behind the matcher.
    if (live.pumping && live.pending.seconds >= MAX_BATCH_S) await live.pumping;
  }

  /**
   * Matches the audio received, a batch at a time, until less than a batch
   * waits (nothing, once `end` asked to drain). One loop per socket: frames
   * that arrive while a batch is matched join the next one, which is formed
   * when the matcher is free, not when they arrive.
   */
  private pump(ws: WebSocket, a: StreamAttachment, live: Live): Promise<void> {
    if (live.pumping) return live.pumping;
    const run = async () => {
      while (!live.closed && live.pending.due(batchSeconds(live.matcher))) {
        const { samples, seconds } = live.pending.take();
        await this.match(ws, a, live, samples, seconds);
      }
    };
    // Set before the loop can end, so a loop with nothing to do leaves no stale promise behind.
    live.pumping = run().finally(() => {
      live.pumping = null;
    });
    return live.pumping;
  }

  private async match(ws: WebSocket, a: StreamAttachment, live: Live, samples: Float32Array, seconds: number): Promise<void> {
    try {
      const r = await live.matcher.push(samples);
      if (r.match && !(await this.report(ws, a, live, r.match))) live.matcher.retract();
    } catch (e) {
      console.error('match failed', e instanceof Error ? e.message : 'unknown');
      this.sendError(ws, 'internal', 'matching this frame failed; the stream goes on');
    } finally {
      live.queuedS = Math.max(0, live.queuedS - seconds);
    }
    const audioS = live.matcher.audioS;
    // A new batch length is news to the client at once: frames of it cost the server least.
    const frameS = frameSeconds(a, live.matcher);
    if (frameS !== live.advisedFrameS || audioS - live.lastStatusS >= STATUS_EVERY_S) {
      live.advisedFrameS = frameS;
      live.lastStatusS = audioS;
      this.send(ws, { type: 'status', data: this.status(a, live) });
    }
    if (audioS - live.lastRegistryS >= 10) {
      live.lastRegistryS = audioS;
      this.ctx.waitUntil(this.publish(a, live).catch(() => {}));
    }
  }

  /**
   * Sends a decided match if its track is ready. The registry is asked here,
   * once per decision, not per lookup: rows of tracks still ingesting or just
   * deleted may take part in the vote, but can never be reported.
   */
  private async report(ws: WebSocket, a: StreamAttachment, live: Live, m: LiveMatch): Promise<boolean> {
    const track = (await this.tracks([m.track])).get(m.track);
    if (!track) return false; // ingesting, failed or deleted
    live.match = {
      track_id: track.track_id,
      title: track.title,
      artist: track.artist,
      offset_s: m.offsetS,
      confidence: m.confidence,
      audio_s: m.audioS,
      speed: m.speed,
    };
    live.matchesReported++;
    this.send(ws, { type: 'match', data: live.match });
    this.ctx.waitUntil(this.publish(a, live).catch(() => {}));
    return true;
  }

  private async onClose(ws: WebSocket): Promise<void> {
    const a = this.attachment(ws);
    this.dropLive(ws);
    await this.env.LIVE_STREAMS.get(this.env.LIVE_STREAMS.idFromName('global'))
      .remove(a.client_id, a.connected_ms)
      .catch(() => {});
  }

  // ---- helpers ----

  private async liveFor(ws: WebSocket, a: StreamAttachment): Promise<Live> {
    let live = this.live.get(ws);
    if (live) return live;
    // First audio after hello, or after the object woke from hibernation: earlier evidence is gone.
    const kiss = await loadKissFFT();
    const again = this.live.get(ws);
    if (again) return again;
    const matcher = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, MATCH_PRESETS.default, a.sample_rate!, (h, cap) => lookupCatalog(this.env, h, cap), MAX_MATCH_FRAME_BYTES / 2);
    live = {
      attachment: a,
      matcher,
      pumping: null,
      closed: false,
      queuedS: 0,
      pending: new PendingAudio(a.sample_rate!),
      frames: 0,
      rate: new TokenBucket(1, this.burstS()),
      lastStatusS: 0,
      advisedFrameS: frameSeconds(a, matcher),
      lastRegistryS: 0,
      match: null,
      matchesReported: 0,
    };
    this.live.set(ws, live);
    return live;
  }

  private dropLive(ws: WebSocket): void {
    const live = this.live.get(ws);
    if (!live) return;
    this.live.delete(ws);
    live.closed = true;
    // Let an in-flight batch finish with the matcher before freeing its WASM buffers.
    void (live.pumping ?? Promise.resolve()).then(() => live.matcher.dispose());
  }

  private burstS(): number {
    return numberVar(this.env.MATCH_BURST_S, DEFAULT_BURST_S);
  }

  /** Ready tracks among `ids`, from a short-lived cache of the registry. */
  private async tracks(ids: ArrayLike<number>): Promise<Map<number, Track>> {
    const now = Date.now();
    const missing = new Set<number>();
    for (let i = 0; i < ids.length; i++) {
      const c = this.trackCache.get(ids[i]);
      if (!c || now - c.at > TRACK_CACHE_MS) missing.add(ids[i]);
    }
    if (missing.size) {
      const found = await registry(this.env).readyTracks([...missing]);
      for (const id of missing) this.trackCache.set(id, { track: null, at: now });
      for (const t of found) this.trackCache.set(t.track_id, { track: t, at: now });
    }
    const out = new Map<number, Track>();
    for (let i = 0; i < ids.length; i++) {
      const t = this.trackCache.get(ids[i])?.track;
      if (t) out.set(t.track_id, t);
    }
    return out;
  }

  private summary(a: StreamAttachment, live: Live | undefined): LiveStreamSummary {
    return {
      client_id: a.client_id,
      connected_ms: a.connected_ms,
      sample_rate: a.sample_rate,
      format: a.format,
      audio_s: Math.round((live?.matcher.audioS ?? 0) * 1000) / 1000,
      match: live?.match ?? null,
      updated_ms: Date.now(),
    };
  }

  private status(a: StreamAttachment, live: Live | undefined): MatchStatusData {
    return {
      audio_s: Math.round((live?.matcher.audioS ?? 0) * 1000) / 1000,
      state: a.sample_rate === null ? 'waiting_hello' : live?.match ? 'matched' : 'listening',
      match: live?.match ?? null,
      landmarks: live?.matcher.landmarks ?? 0,
      frame_s: live?.advisedFrameS ?? MATCH_BATCH_S,
    };
  }

  private publish(a: StreamAttachment, live: Live | undefined): Promise<void> {
    return this.env.LIVE_STREAMS.get(this.env.LIVE_STREAMS.idFromName('global')).upsert(this.summary(a, live));
  }

  private attachment(ws: WebSocket): StreamAttachment {
    // Written only by this class, in onConnect and on hello.
    return ws.deserializeAttachment() as StreamAttachment;
  }

  private send(ws: WebSocket, msg: MatchServerMessage): void {
    try {
      ws.send(JSON.stringify(msg));
    } catch {
      // the socket closed under us; webSocketClose cleans up
    }
  }

  private sendError(ws: WebSocket, code: ErrorCode, message: string): void {
    const n = (this.errors.get(ws) ?? 0) + 1;
    this.errors.set(ws, n);
    this.send(ws, { type: 'error', code, message });
    if (n >= MAX_ERRORS && code !== 'gone' && code !== 'conflict') {
      try {
        ws.close(MATCH_CLOSE.misbehaving, 'too many bad frames');
      } catch {
        // already closed
      }
    }
  }
}

/**
 * Little-endian mono PCM to Float32; null when a float sample is NaN or
 * infinite. Typed arrays read the wire's byte order as it is: every Workers
 * host is little-endian (the analysis stream views its frames the same way).
 */
function decodePcm(data: ArrayBuffer, format: MatchFormat): Float32Array | null {
  if (format === 's16') {
    const pcm = new Int16Array(data);
    const out = new Float32Array(pcm.length);
    for (let i = 0; i < out.length; i++) out[i] = pcm[i] / 32768;
    return out;
  }
  // The message's own buffer, viewed: nothing else holds it.
  const out = new Float32Array(data);
  // x − x is 0 for every finite x and NaN for NaN and ±Infinity.
  for (let i = 0; i < out.length; i++) if (out[i] - out[i] !== 0) return null;
  return out;
}
