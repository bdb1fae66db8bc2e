// The room's wire protocol: every message a room socket or the room REST API
// accepts is parsed by one of these schemas, and every message the room sends
// is typed here. Imported by the worker, the TransportSession object, the
// client library, the agent, the page and the tests.

import { z } from 'zod';
import type { Anchor, TransportFrame } from './transport.ts';
import { SAMPLE_RATE_MAX, SAMPLE_RATE_MIN, TEMPO_MAX, TEMPO_MIN } from './transport.ts';
import type { ErrorCode } from './errors.ts';

const finite = () => z.number().refine(Number.isFinite, 'must be a finite number');
/** A request id echoed in the ack, so a controller can match answers to commands. */
const requestId = z.string().min(1).max(64).optional();

export const MAX_ROOM_MESSAGE_BYTES = 4096;
export const TICK_HZ_MIN = 1;
export const TICK_HZ_MAX = 60;
/** Server time may be given for a scheduled start at most this far ahead. */
export const MAX_SCHEDULE_AHEAD_MS = 60_000;

export const CreateRoomBody = z
  .object({
    sample_rate: z.number().int().min(SAMPLE_RATE_MIN).max(SAMPLE_RATE_MAX).optional(),
    bpm: finite().min(TEMPO_MIN).max(TEMPO_MAX).optional(),
    beats_per_bar: z.number().int().min(1).max(32).optional(),
  })
  .strict();
export type CreateRoomBody = z.infer<typeof CreateRoomBody>;

export const PlayArgs = z
  .object({
    /** "now" (default), "next_bar", or a server time in ms since the epoch. */
    at: z.union([z.literal('now'), z.literal('next_bar'), finite().positive()]).optional(),
  })
  .strict();

export const EmptyArgs = z.object({}).strict();

export const SeekArgs = z
  .object({
    seconds: finite().min(0).max(1e7).optional(),
    samples: finite().min(0).max(1e12).optional(),
    beats: finite().min(-1e6).max(1e7).optional(),
  })
  .strict()
  .refine((v) => [v.seconds, v.samples, v.beats].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of seconds, samples or beats',
  });

export const TempoArgs = z
  .object({
    bpm: finite().min(TEMPO_MIN).max(TEMPO_MAX),
    beats_per_bar: z.number().int().min(1).max(32).optional(),
  })
  .strict();

export const CONTROL_OPS = ['play', 'pause', 'resume', 'stop', 'seek', 'tempo'] as const;
export type ControlOp = (typeof CONTROL_OPS)[number];

export const ControlArgs = {
  play: PlayArgs,
  pause: EmptyArgs,
  resume: EmptyArgs,
  stop: EmptyArgs,
  seek: SeekArgs,
  tempo: TempoArgs,
} as const;

export type ControlCommand =
  | ({ op: 'play' } & z.infer<typeof PlayArgs>)
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'stop' }
  | ({ op: 'seek' } & z.infer<typeof SeekArgs>)
  | ({ op: 'tempo' } & z.infer<typeof TempoArgs>);

export const ROLES = ['viewer', 'controller', 'agent'] as const;
export type Role = (typeof ROLES)[number];

// Client → room, over the socket.
const Hello = z
  .object({
    type: z.literal('hello'),
    role: z.enum(ROLES).optional(),
    token: z.string().min(1).max(256).optional(),
    id: requestId,
  })
  .strict();
const Ping = z
  .object({ type: z.literal('ping'), id: z.number().int().min(0).max(2 ** 31), t0: finite() })
  .strict();

// Agent → room. `clock` reports the device's timeline position and the server
// time it belongs to (by the agent's own offset estimate), 10–20 times a second
// while playing. `agent_state` reports a discontinuity: the answer to a
// forwarded command (with its id), a change made at the DAW, or the state on
// (re)attaching.
const AgentClock = z
  .object({ type: z.literal('clock'), sample: finite().min(0).max(1e13), server_ms: finite().positive() })
  .strict();
const AgentState = z
  .object({
    type: z.literal('agent_state'),
    id: requestId,
    cause: z.enum(['attach', 'play', 'pause', 'resume', 'stop', 'seek', 'tempo', 'local', 'end']),
    status: z.enum(['playing', 'paused', 'stopped']),
    sample: finite().min(0).max(1e13),
    server_ms: finite().positive(),
    bpm: finite().min(TEMPO_MIN).max(TEMPO_MAX),
    beats_per_bar: z.number().int().min(1).max(32),
    /** Set when the agent refused a forwarded command. */
    error: z.string().max(200).optional(),
  })
  .strict();
export type AgentStateMessage = z.infer<typeof AgentState>;

const tagged = <T extends string>(type: T) => ({ type: z.literal(type), id: requestId });

export const RoomClientMessage = z.discriminatedUnion('type', [
  Hello,
  Ping,
  PlayArgs.safeExtend(tagged('play')),
  EmptyArgs.safeExtend(tagged('pause')),
  EmptyArgs.safeExtend(tagged('resume')),
  EmptyArgs.safeExtend(tagged('stop')),
  SeekArgs.safeExtend(tagged('seek')),
  TempoArgs.safeExtend(tagged('tempo')),
  AgentClock,
  AgentState,
]);
export type RoomClientMessage = z.infer<typeof RoomClientMessage>;

export const ROOM_CLIENT_TYPES = ['hello', 'ping', ...CONTROL_OPS, 'clock', 'agent_state'] as const;

// Room → client.
export interface AgentPresence {
  connected: boolean;
  since_ms: number | null;
}

export type RoomServerMessage =
  | { type: 'welcome'; code: string; role: Role; anchor: Anchor; agent: AgentPresence; server_ms: number; ticks: number | null }
  | { type: 'anchor'; anchor: Anchor; cause: ControlOp | 'correction' | 'agent' | 'attach' | 'local' | 'end' }
  | { type: 'pong'; id: number; t0: number; t1: number; t2: number }
  | ({ type: 'tick' } & TransportFrame)
  | { type: 'ack'; id: string | null; op: ControlOp | 'hello'; version: number; role?: Role }
  | { type: 'error'; code: ErrorCode; message: string; id?: string | null }
  | { type: 'agent'; agent: AgentPresence }
  /** Room → agent: a controller's command to apply to the real transport. `play.at` is always a server time here. */
  | { type: 'control'; id: string; command: ControlCommand }
  | { type: 'expired'; reason: string };

/** Turns zod issues into short "path: message" lines for error bodies. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 8).map((i) => {
    // zod names unknown keys in its message; a key is the client's own text
    // (a token pasted into the wrong place), so say how many, not which.
    const message = i.code === 'unrecognized_keys' ? `${i.keys.length} unknown field${i.keys.length === 1 ? '' : 's'} (not part of this message)` : i.message;
    // Paths name only schema fields and indices (no schema here has free-form keys).
    return i.path.length ? `${i.path.join('.')}: ${message}` : message;
  });
}
