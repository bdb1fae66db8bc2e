import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { requireAdmin } from '../admin.ts';
import { CLIENT_ID_PATTERN, RoomtoneError } from '../../protocol/index.ts';

/** Admin view of live identification streams. */
export const monitoring = new Hono<AppEnv>();

monitoring.use('*', async (c, next) => {
  requireAdmin(c, 'monitoring');
  await next();
});

function streamStub(c: Context<AppEnv>) {
  const clientId = c.req.param('client_id') ?? '';
  if (!CLIENT_ID_PATTERN.test(clientId)) throw new RoomtoneError('not_found', 'no such live stream');
  return c.env.MATCH.get(c.env.MATCH.idFromName(clientId));
}

monitoring.get('/live-streams', async (c) => {
  const streams = await c.env.LIVE_STREAMS.get(c.env.LIVE_STREAMS.idFromName('global')).list();
  return c.json({ streams });
});

monitoring.get('/live-streams/:client_id', async (c) => {
  const detail = await streamStub(c).describe();
  if (!detail) throw new RoomtoneError('not_found', 'no such live stream');
  return c.json(detail);
});

monitoring.delete('/live-streams/:client_id', async (c) => {
  const clientId = c.req.param('client_id');
  if (!(await streamStub(c).disconnect())) throw new RoomtoneError('not_found', 'no such live stream');
  return c.json({ disconnected: true, client_id: clientId });
});
