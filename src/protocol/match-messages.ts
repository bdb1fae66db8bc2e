// The live identification protocol of `WS /api/v1/match/:client_id` and the
// monitoring documents of `/api/v1/monitoring/live-streams`.
//
// Client → server: one JSON `hello` declaring the audio format, then binary
// frames of little-endian mono PCM in that format, and optionally `end` to
// ask for a final report. Server → client: `ready`, `match` (whenever a track
// is identified, and again when the stream changes to another track),
// periodic `status`, `ended`, and `error` frames (the socket stays open).
import { z } from 'zod';
import type { ErrorCode } from './errors.ts';

export const MATCH_FORMATS = ['f32', 's16'] as const;
export type MatchFormat = (typeof MATCH_FORMATS)[number];
export const MATCH_DEFAULT_RATE = 22050;
export const MATCH_MIN_RATE = 8000;
export const MATCH_MAX_RATE = 192000;
/** A binary frame may carry at most this many bytes (about 1.5 s of 44.1 kHz f32). */
export const MAX_MATCH_FRAME_BYTES = 256 * 1024;
/**
 * Seconds of audio the match stream looks up at once, at the least: what it
 * advises (`frame_s`) while a decision may be near. A smaller frame reaches
 * no decision sooner, and every message costs the server CPU whatever it
 * carries.
 */
export const MATCH_BATCH_S = 0.5;
export const MAX_MATCH_TEXT_BYTES = 1024;
/** Client ids name a stream: letters, digits, `_` and `-`. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The longest frame of `format` at `sampleRate` within MAX_MATCH_FRAME_BYTES, in whole tenths of a second. */
export function maxMatchFrameS(sampleRate: number, format: MatchFormat): number {
  const width = format === 'f32' ? 4 : 2;
  return Math.floor((10 * MAX_MATCH_FRAME_BYTES) / (width * sampleRate)) / 10;
}

export const MATCH_CLOSE = {
  /** The admin disconnected the stream (monitoring DELETE). */
  disconnected: 4000,
  /** Another connection took over this client id. */
  replaced: 4002,
  /** Too many bad frames. */
  misbehaving: 4003,
} as const;

export const MatchHello = z.object({
  type: z.literal('hello'),
  sample_rate: z.number().int().min(MATCH_MIN_RATE).max(MATCH_MAX_RATE).default(MATCH_DEFAULT_RATE),
  format: z.enum(MATCH_FORMATS).default('f32'),
  channels: z.literal(1).optional(),
});
export const MatchEnd = z.object({ type: z.literal('end') });
export const MatchClientMessage = z.discriminatedUnion('type', [MatchHello, MatchEnd]);
export type MatchClientMessage = z.infer<typeof MatchClientMessage>;
export const MATCH_CLIENT_TYPES = ['hello', 'end'] as const;

export interface MatchData {
  track_id: number;
  title: string;
  artist: string | null;
  /** Position in the track of the stream's first sample, seconds. */
  offset_s: number;
  /** 0..1 */
  confidence: number;
  /** Seconds of stream audio consumed when the decision was made. */
  audio_s: number;
  /** Playback speed relative to the catalog recording. */
  speed: number;
}

export interface MatchStatusData {
  audio_s: number;
  state: 'waiting_hello' | 'listening' | 'matched';
  match: MatchData | null;
  landmarks: number;
  /**
   * Seconds of audio per frame the server advises now: the batch it matches
   * (0.5 s while a decision may be near, 2 s while the track is known or
   * nothing has been known for a vote window), capped to the frame limit.
   * Sent again in a `status` whenever it changes. Larger frames reach no
   * decision sooner; smaller ones cost the server a message each.
   */
  frame_s: number;
}

export type MatchServerMessage =
  /**
   * `burst_s`: seconds of audio a client may send ahead of real time; beyond it frames are refused (`rate_limited`).
   * `frame_s`: the frame the server advises to begin with (see MatchStatusData).
   */
  | { type: 'ready'; data: { client_id: string; sample_rate: number; format: MatchFormat; burst_s: number; frame_s: number } }
  | { type: 'match'; data: MatchData }
  | { type: 'status'; data: MatchStatusData }
  | { type: 'ended'; data: MatchStatusData }
  | { type: 'error'; code: ErrorCode; message: string };

export interface LiveStreamSummary {
  client_id: string;
  connected_ms: number;
  sample_rate: number | null;
  format: MatchFormat | null;
  audio_s: number;
  match: MatchData | null;
  updated_ms: number;
}

export interface LiveStreamDetail extends LiveStreamSummary {
  landmarks: number;
  /** Distinct landmark hashes looked up in the catalog, and the round trips to the shards that carried them. */
  lookups: number;
  lookup_rounds: number;
  /**
   * Speed hypotheses being searched: all of them (5 by default) while the
   * stream's track is unknown, 1 while a decision names its track and speed
   * (docs/identification.md); 0 before the stream's hello, like the counters.
   */
  speeds_searched: number;
  /** Binary frames received: many small ones cost the service more than a few large ones for the same audio. */
  frames: number;
  matches_reported: number;
  errors_sent: number;
  queued_s: number;
}
