import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from './env.ts';
import { rooms } from './routes/rooms.ts';
import { jobs } from './routes/jobs.ts';
import { catalog } from './routes/catalog.ts';
import { match } from './routes/match.ts';
import { monitoring } from './routes/monitoring.ts';
import { analysis } from './routes/analysis.ts';
import { RoomtoneError } from '../protocol/index.ts';

export const app = new Hono<AppEnv>();

app.get('/api/v1/health', (c) => c.json({ ok: true, server_ms: Date.now() }));
app.route('/api/v1/rooms', rooms);
app.route('/api/v1/jobs', jobs);
app.route('/api/v1/catalog', catalog);
app.route('/api/v1/match', match);
app.route('/api/v1/monitoring', monitoring);
app.route('/api/v1', analysis);

// The room page is one HTML file for every code: the page reads the code from its URL.
app.get('/r/:code', async (c) => {
  if (!c.env.ASSETS) return c.text('the web page is not built', 503);
  // '/room', not '/room.html': the asset server redirects *.html to the bare name, which would lose the code.
  return c.env.ASSETS.fetch(new Request(new URL('/room', c.req.url), c.req.raw));
});

// The path is not repeated back: it is the client's own text.
app.all('/api/*', (c) => c.json({ error: { code: 'not_found', message: 'no such API route (see the README for the routes)' } }, 404));

app.notFound(async (c) => {
  if (c.env.ASSETS) return c.env.ASSETS.fetch(c.req.raw);
  return c.json({ error: { code: 'not_found', message: 'not found' } }, 404);
});

app.onError((err, c) => {
  if (err instanceof RoomtoneError) {
    const headers: Record<string, string> = {};
    if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
    return c.json(err.toBody(), err.status as 400, headers);
  }
  if (err instanceof HTTPException) {
    return c.json({ error: { code: err.status === 404 ? 'not_found' : 'bad_request', message: err.message } }, err.status);
  }
  // Never echo internals (or anything a request carried) to the client.
  console.error('unhandled error', err instanceof Error ? err.name + ': ' + err.message : 'unknown');
  return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
});
