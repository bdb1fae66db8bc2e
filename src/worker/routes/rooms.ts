import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { bearerToken, publicOrigin, readJson } from '../http.ts';
import { guardJoin, guardRoomCreation, openConnection, recordJoinFailure } from '../limits.ts';
import { TransportSession } from '../../durable/transport-session.ts';
import { generateToken, hashToken } from '../../lib/tokens.ts';
import {
  CONTROL_OPS,
  ControlArgs,
  CreateRoomBody,
  RoomtoneError,
  generateRoomCode,
  normalizeRoomCode,
  type ControlCommand,
  type ControlOp,
} from '../../protocol/index.ts';
import { z } from 'zod';

const CreateBody = CreateRoomBody.safeExtend({
  idle_ttl_s: z.number().int().min(1).max(30 * 86_400).optional(),
});

export const rooms = new Hono<AppEnv>();

function roomStub(c: Context<AppEnv>, code: string) {
  return c.env.TRANSPORT.get(c.env.TRANSPORT.idFromName(code));
}

/** Resolves `:code` to a live room's stub, or counts a failed join and answers 404. */
async function joinRoom(c: Context<AppEnv>) {
  await guardJoin(c);
  const code = normalizeRoomCode(c.req.param('code') ?? '');
  const stub = code ? roomStub(c, code) : null;
  if (!code || !stub || !(await stub.exists())) {
    await recordJoinFailure(c);
    throw new RoomtoneError('not_found', 'no room with that code (it may have expired)');
  }
  return { code, stub };
}

function roomLinks(c: Context<AppEnv>, code: string) {
  const origin = publicOrigin(c);
  return {
    ws_url: `${origin.replace(/^http/, 'ws')}/api/v1/rooms/${code}/ws`,
    page_url: `${origin}/r/${code}`,
  };
}

rooms.post('/', async (c) => {
  await guardRoomCreation(c);
  const body = await readJson(c, CreateBody);
  const token = generateToken();
  const token_hash = await hashToken(token);
  for (let attempt = 0; attempt < 8; attempt++) {
    const code = generateRoomCode();
    const created = await roomStub(c, code).create({
      code,
      token_hash,
      sample_rate: body.sample_rate ?? 48_000,
      bpm: body.bpm ?? 120,
      beats_per_bar: body.beats_per_bar ?? 4,
      idle_ttl_s: body.idle_ttl_s ?? TransportSession.defaultIdleTtlS(c.env),
    });
    if (created) return c.json({ code, control_token: token, ...roomLinks(c, code) }, 201);
  }
  throw new RoomtoneError('internal', 'could not find a free room code; try again');
});

rooms.get('/:code', async (c) => {
  const { code, stub } = await joinRoom(c);
  const summary = await stub.summary();
  if (!summary) throw new RoomtoneError('not_found', 'no room with that code (it may have expired)');
  return c.json({ ...summary, ...roomLinks(c, code) });
});

rooms.get('/:code/transport', async (c) => {
  const { stub } = await joinRoom(c);
  const frame = await stub.transport();
  if (!frame) throw new RoomtoneError('not_found', 'no room with that code (it may have expired)');
  return c.json(frame);
});

rooms.get('/:code/metrics', async (c) => {
  const { stub } = await joinRoom(c);
  const metrics = await stub.metrics();
  if (!metrics) throw new RoomtoneError('not_found', 'no room with that code (it may have expired)');
  return c.json(metrics);
});

rooms.post('/:code/transport/:op', async (c) => {
  const op = c.req.param('op') as ControlOp;
  if (!(CONTROL_OPS as readonly string[]).includes(op)) {
    throw new RoomtoneError('not_found', `unknown transport command; expected one of ${CONTROL_OPS.join(', ')}`);
  }
  const { stub } = await joinRoom(c);
  const token = bearerToken(c);
  if (!token) throw new RoomtoneError('unauthorized', 'send the control token as Authorization: Bearer <token>');
  let args;
  try {
    args = await readJson(c, ControlArgs[op]);
  } catch (e) {
    // A wrong token is 401 whatever the body; the room is asked only when the
    // body is bad, so a good command costs one call (control checks the token).
    if (e instanceof RoomtoneError && !(await stub.authorize(token))) {
      await recordJoinFailure(c);
      throw new RoomtoneError('unauthorized', 'a valid control token is required');
    }
    throw e;
  }
  const result = await stub.control(token, { op, ...args } as ControlCommand);
  if (!result.ok) {
    if (result.code === 'unauthorized') await recordJoinFailure(c);
    throw new RoomtoneError(result.code, result.message);
  }
  return c.json({ ok: true, changed: result.changed, anchor: result.anchor, transport: result.frame });
});

rooms.get('/:code/ws', async (c) => {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    return c.json({ error: { code: 'bad_request', message: 'this endpoint needs a WebSocket upgrade' } }, 426);
  }
  const role = c.req.query('role') ?? 'viewer';
  if (!['viewer', 'controller', 'agent'].includes(role)) throw new RoomtoneError('bad_request', 'role must be viewer, controller or agent');
  const { code, stub } = await joinRoom(c);
  // Controllers, the agent and tick streams talk to the room itself; plain
  // viewers may be placed on a relay when the room is crowded.
  if (role === 'viewer' && c.req.query('ticks') === undefined) {
    const place = await stub.assign();
    if (place.target === 'relay') return openConnection(c, 'RELAYS', c.env.RELAYS.idFromName(place.name));
  }
  return openConnection(c, 'TRANSPORT', c.env.TRANSPORT.idFromName(code));
});
