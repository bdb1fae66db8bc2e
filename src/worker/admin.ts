import type { Context } from 'hono';
import type { AppEnv } from './env.ts';
import { bearerToken } from './http.ts';
import { constantTimeEqual } from '../lib/tokens.ts';
import { RoomtoneError } from '../protocol/index.ts';

/** Admin routes (catalog writes, monitoring) need `Authorization: Bearer <ADMIN_TOKEN>`. */
export function requireAdmin(c: Context<AppEnv>, what: string): void {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) throw new RoomtoneError('forbidden', `${what} needs ADMIN_TOKEN to be configured on the server`);
  const token = bearerToken(c);
  if (!token) throw new RoomtoneError('unauthorized', 'send the admin token as Authorization: Bearer <token>');
  if (!constantTimeEqual(token, expected)) throw new RoomtoneError('unauthorized', 'the admin token is not valid');
}
