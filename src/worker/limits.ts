import type { Context } from 'hono';
import type { AppEnv } from './env.ts';
import { numberVar } from '../lib/env-vars.ts';
import { clientKey } from './http.ts';
import { RoomtoneError } from '../protocol/index.ts';
import { LEASE_HEADER, leaseValue, type LeaseOwner } from '../durable/connection-lease.ts';

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
  await spendPerMinute(c, 'rooms', numberVar(c.env.ROOMS_PER_MIN, 30), 'rooms');
}

/** Counts one use of a per-client budget of `limit` a minute (shared by every isolate through the limiter object); 429 past it. */
export async function spendPerMinute(c: Context<AppEnv>, bucket: string, limit: number, what: string): Promise<void> {
  const v = await limiter(c).hit(bucket, limit, MINUTE);
  if (!v.allowed) throw new RoomtoneError('rate_limited', `at most ${limit} ${what} per minute per client`, { retryAfterS: v.retry_after_s });
}

/**
 * Forwards a WebSocket upgrade to the object that will own the socket, holding
 * one of the client's open-connection leases for it (CONNECTIONS_PER_CLIENT,
 * every kind of socket together). A count in the client's limiter rather than
 * a per-minute rate or a per-object cap: only a count bounds what one client
 * holds open across many rooms, streams and jobs at once. How the count stays
 * right through hibernation and lost closes: src/durable/connection-lease.ts.
 */
export async function openConnection(c: Context<AppEnv>, owner: LeaseOwner, id: DurableObjectId, request: Request = c.req.raw): Promise<Response> {
  const limit = numberVar(c.env.CONNECTIONS_PER_CLIENT, 200);
  const limiterId = c.env.LIMITER.idFromName(clientKey(c));
  const limiter = c.env.LIMITER.get(limiterId);
  const v = await limiter.acquire(owner, id.toString(), limit);
  if (!v.allowed || !v.lease) {
    throw new RoomtoneError('rate_limited', `at most ${limit} open connections per client; close one first`, { retryAfterS: v.retry_after_s });
  }
  const lease = v.lease;
  const headers = new Headers(request.headers);
  headers.set(LEASE_HEADER, leaseValue(limiterId.toString(), lease));
  const ns = c.env[owner] as unknown as DurableObjectNamespace;
  let res: Response;
  try {
    res = await ns.get(id).fetch(new Request(request.url, { method: 'GET', headers }));
  } catch (e) {
    c.executionCtx.waitUntil(limiter.release(lease).catch(() => {}));
    throw e;
  }
  // Refused upgrades (404, 429 …) hold no socket.
  if (res.status !== 101) c.executionCtx.waitUntil(limiter.release(lease).catch(() => {}));
  return res;
}
