import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { CLIENT_ID_PATTERN, RoomtoneError } from '../../protocol/index.ts';
import { openConnection } from '../limits.ts';

/** `WS /api/v1/match/:client_id`: the upgrade goes to the client's MatchStream, which accepts it (hibernatable). */
export const match = new Hono<AppEnv>();

match.get('/:client_id', async (c) => {
  const clientId = c.req.param('client_id');
  if (!CLIENT_ID_PATTERN.test(clientId)) throw new RoomtoneError('bad_request', 'client ids are 1-64 letters, digits, _ or -');
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    return c.json({ error: { code: 'bad_request', message: 'this endpoint needs a WebSocket upgrade' } }, 426);
  }
  return openConnection(c, 'MATCH', c.env.MATCH.idFromName(clientId));
});
