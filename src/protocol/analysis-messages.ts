// The live analysis protocol of `WS /api/v1/analysis/:id` and of room-owned
// streams `WS /api/v1/rooms/:code/analysis/:name`, and the document of
// `POST /api/v1/analyze`.
//
// Client → server: JSON text frames with a `type`; the first `hello` decides
// the socket's role. A source then sends binary frames: little-endian mono
// PCM in the declared format, any number of samples per frame, never base64.
// Server → client: `welcome` on connect, `ready` after a hello, `analysis`
// results (to the source and every watcher), `status` changes, `stats` and
// `pong` on request, and `error` frames (`code` from errors.ts plus a finer
// `reason`); the socket stays open unless the error says it closes.
//
// Resuming a source: a source's `ready` carries a `resume_token`. A link can
// die silently, and the server then still holds the old socket as the source,
// so the same source coming back would be refused as `source_taken`; a hello
// that presents the token replaces that stale socket (closed with
// ANALYSIS_CLOSE.replaced) instead. The server keeps only the token's hash.
import { z } from 'zod';
import type { ErrorCode } from './errors.ts';

export const ANALYSIS_FORMATS = ['f32', 's16'] as const;
export type AnalysisFormat = (typeof ANALYSIS_FORMATS)[number];
export const ANALYSIS_MIN_RATE = 8_000;
export const ANALYSIS_MAX_RATE = 96_000;
/** A binary frame may carry at most this many bytes (0.68 s of 96 kHz f32, 2.9 s of 44.1 kHz s16). */
export const MAX_ANALYSIS_FRAME_BYTES = 256 * 1024;
export const MAX_ANALYSIS_TEXT_BYTES = 2048;
/** Audio may arrive ahead of real time by this much (network bunching, a client catching up), seconds. */
export const ANALYSIS_BURST_S = 2;
/**
 * f32 samples are full scale at ±1. Float audio can run a little hot (a
 * mix bus, a gain stage): up to this magnitude (+24 dBFS) a sample is
 * clipped to ±1, as a converter would, and counted in `stats.clipped_samples`.
 * Beyond it the frame is not audio at this scale (integer PCM sent as f32, a
 * wrong byte order, garbage): it is refused like NaN.
 */
export const ANALYSIS_F32_MAX_MAGNITUDE = 16;
/** Results are sent at least this often, in seconds of audio. */
export const ANALYSIS_RESULT_INTERVAL_S = 0.05;
/** Stream ids and names: letters, digits, `_` and `-`. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** The largest WAV body POST /api/v1/analyze takes. */
export const MAX_ANALYZE_BODY_BYTES = 10 * 1024 * 1024;

export const ANALYSIS_CLOSE = {
  /** The same source reconnected with its resume token and took over (as MATCH_CLOSE.replaced). */
  replaced: 4002,
  /** Too many bad frames or messages in a row. */
  misbehaving: 4003,
  /** Sending faster than real time, well past the burst allowance, for too long. */
  too_fast: 4008,
} as const;

/**
 * Results come at least every 50 ms of audio, so a source that has streamed
 * and heard nothing back for this long has a dead link, though no close came
 * (the agent and the room page both give such a socket up and resume).
 */
export const ANALYSIS_SILENT_MS = 4_000;

/** 128 random bits as 32 lowercase hex digits. */
export const RESUME_TOKEN_PATTERN = /^[0-9a-f]{32}$/;

const requestId = z.string().min(1).max(64).optional();

export const AnalysisSourceHello = z
  .object({
    type: z.literal('hello'),
    role: z.literal('source'),
    sample_rate: z.number().int(),
    format: z.string(),
    /** Optional: server time (ms) at which the first sample sent on this connection was captured, for exact beat positions in rooms. */
    t0_server_ms: z.number().positive().optional(),
    /** Optional: the `resume_token` of this source's previous `ready`, to replace its socket if the server still holds it. */
    resume_token: z.string().regex(RESUME_TOKEN_PATTERN).optional(),
    id: requestId,
  })
  .strict();

export const AnalysisWatcherHello = z
  .object({
    type: z.literal('hello'),
    role: z.literal('watcher'),
    id: requestId,
  })
  .strict();

export const AnalysisStatsRequest = z.object({ type: z.literal('stats'), id: requestId }).strict();
export const AnalysisPing = z.object({ type: z.literal('ping'), id: requestId, t0: z.number().optional() }).strict();

export const ANALYSIS_CLIENT_TYPES = ['hello', 'stats', 'ping'] as const;

export type AnalysisRole = 'source' | 'watcher';

/** Why a frame or message was refused, finer than the error code. */
export type AnalysisErrorReason =
  | 'hello_required'
  | 'hello_repeated'
  | 'source_taken'
  | 'not_source'
  | 'unsupported_format'
  | 'unsupported_rate'
  | 'odd_byte_count'
  | 'non_finite_samples'
  | 'samples_out_of_range'
  | 'frame_too_large'
  | 'too_fast'
  | 'bad_message';

export interface AnalysisPitch {
  hz: number;
  /** Nearest note, A4 = 440 Hz ("C#4"). */
  note: string;
  /** Distance from that note, -50..50. */
  cents: number;
  /** NSDF clarity, 0..1. */
  confidence: number;
}

export interface AnalysisDynamics {
  rms_db: number;
  peak_db: number;
  velocity: number;
}

export interface AnalysisResult {
  type: 'analysis';
  /** Increases by one per result for the life of the stream, across restarts. */
  seq: number;
  /** Stream time (s) of the frame the pitch and dynamics describe: the centre of its window. */
  t: number;
  pitch: AnalysisPitch | null;
  /** Onsets found since the previous result, stream seconds. */
  onsets: number[];
  dynamics: AnalysisDynamics;
  /** Room-owned streams: the room's beat position at `t` and at each onset (null while unknown). */
  beat?: number | null;
  onset_beats?: Array<number | null>;
}

export interface AnalysisStats {
  type: 'stats';
  id: string | null;
  stream: string;
  room: string | null;
  source_connected: boolean;
  watchers: number;
  sample_rate: number | null;
  format: AnalysisFormat | null;
  /** Audio analysed since the stream (or its last restart) began. */
  seconds_in: number;
  samples_in: number;
  frames: number;
  /** f32 samples beyond ±1 (up to ANALYSIS_F32_MAX_MAGNITUDE) clipped to ±1 before analysis. */
  clipped_samples: number;
  results_sent: number;
  onsets: number;
  seq: number;
  dropped: Partial<Record<AnalysisErrorReason, number>>;
  /** Times the in-memory state was lost (eviction, restart) while a source was attached. */
  restarts: number;
  server_ms: number;
}

export type AnalysisServerMessage =
  | {
      type: 'welcome';
      stream: string;
      room: string | null;
      server_ms: number;
      limits: {
        sample_rates: [number, number];
        formats: readonly AnalysisFormat[];
        max_frame_bytes: number;
        burst_s: number;
        result_interval_s: number;
      };
    }
  | {
      type: 'ready';
      id: string | null;
      role: AnalysisRole;
      sample_rate: number | null;
      format: AnalysisFormat | null;
      window: number | null;
      hop: number | null;
      hop_s: number | null;
      seq: number;
      /** Source only: present it in the next hello's `resume_token` to take over from this socket after a silent drop. Secret; new on every ready. */
      resume_token?: string;
      /**
       * Source only: the stream time (s) of this source's first sample. A
       * stream's time runs on across its sources, so after a reconnect results
       * continue where the last source stopped, not at 0.
       */
      start_t?: number;
    }
  | AnalysisResult
  | {
      type: 'status';
      state: 'source_joined' | 'source_left' | 'restarted';
      message: string;
      seq: number;
      sample_rate: number | null;
    }
  | AnalysisStats
  | { type: 'pong'; id: string | null; t0: number | null; t1: number; t2: number }
  | { type: 'error'; code: ErrorCode; reason: AnalysisErrorReason; message: string; id: string | null; closing?: boolean };
