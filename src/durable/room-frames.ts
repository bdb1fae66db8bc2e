// The checks every room socket (the room's own and its relays') applies to a
// frame before its schema: rate, kind, size, JSON. One place, one wording.
import { MAX_ROOM_MESSAGE_BYTES, type ErrorCode } from '../protocol/index.ts';
import { TokenBucket } from '../lib/rate.ts';

/** Sustained and burst message rates per socket: a join burst of pings fits, a flood does not. */
export const SOCKET_RATE = { perSecond: 40, burst: 80 };

export type FrameRead = { ok: true; raw: unknown } | { ok: false; code: ErrorCode; message: string };

/** Takes one token from the socket's bucket (made on first use) and parses the frame's JSON. */
export function readRoomFrame(buckets: WeakMap<WebSocket, TokenBucket>, ws: WebSocket, message: string | ArrayBuffer, received: number): FrameRead {
  let bucket = buckets.get(ws);
  if (!bucket) buckets.set(ws, (bucket = new TokenBucket(SOCKET_RATE.perSecond, SOCKET_RATE.burst, received)));
  if (!bucket.take(received)) return { ok: false, code: 'rate_limited', message: `more than ${SOCKET_RATE.perSecond} messages per second; message dropped` };
  if (typeof message !== 'string') return { ok: false, code: 'bad_request', message: 'binary frames are not accepted on a room socket' };
  if (message.length > MAX_ROOM_MESSAGE_BYTES) return { ok: false, code: 'too_large', message: `messages are limited to ${MAX_ROOM_MESSAGE_BYTES} bytes` };
  try {
    return { ok: true, raw: JSON.parse(message) };
  } catch {
    return { ok: false, code: 'bad_json', message: 'message is not valid JSON' };
  }
}
