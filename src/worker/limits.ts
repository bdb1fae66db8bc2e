import type { Context } from 'hono';
import type { AppEnv } from './env.ts';
import { numberVar } from './env.ts';
import { clientKey } from './http.ts';
import { RoomtoneError } from '../protocol/index.ts';

const MINUTE = 60_000;

function limiter(c: Context<AppEnv>) {
  return c.env.LIMITER.get(c.env.LIMITER.idFromName(clientKey(c)));
}

/** Refuses a client that has failed to join (unknown code, wrong token) too often this minute. */
export async function guardJoin(c: Context<AppEnv>): Promise<void> {
  const limit = numberVar(c.env.JOIN_FAILURES_PER_MIN, 20);
  const v = await limiter(c).peek('join-failures', limit, MINUTE);
  if (!v.allowed) {
    throw new RoomtoneError('rate_limited', 'too many failed attempts to join; wait before trying again', { retryAfterS: v.retry_after_s });
  }
}

export async function recordJoinFailure(c: Context<AppEnv>): Promise<void> {
  await limiter(c).record('join-failures', MINUTE);
}

export async function guardRoomCreation(c: Context<AppEnv>): Promise<void> {
  const limit = numberVar(c.env.ROOMS_PER_MIN, 30);
  const v = await limiter(c).hit('rooms', limit, MINUTE);
  if (!v.allowed) throw new RoomtoneError('rate_limited', `at most ${limit} rooms per minute per client`, { retryAfterS: v.retry_after_s });
}
