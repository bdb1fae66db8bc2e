import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { numberVar } from '../../lib/env-vars.ts';
import { bearerToken, publicOrigin, readJson } from '../http.ts';
import { createJob, jobLinks, jobStatus, postJobEvent } from '../../lib/jobs.ts';
import { CreateJobBody, JOB_ID_PATTERN, JobEventInput, MAX_JOB_EVENT_BYTES, RoomtoneError } from '../../protocol/index.ts';
import { requireAdmin } from '../admin.ts';
import { openConnection, spendPerMinute } from '../limits.ts';

export const jobs = new Hono<AppEnv>();

function jobId(c: Context<AppEnv>): string {
  const id = c.req.param('id') ?? '';
  // Malformed ids cannot name a job: answer without waking an object.
  if (!JOB_ID_PATTERN.test(id)) throw new RoomtoneError('not_found', 'no such job (it may have expired)');
  return id;
}


jobs.post('/', async (c) => {
  await spendPerMinute(c, 'jobs', numberVar(c.env.JOBS_PER_MIN, 60), 'jobs');
  requireAdmin(c, 'creating jobs over HTTP');
  const body = await readJson(c, CreateJobBody);
  const { publisher: _publisher, ...created } = await createJob(c.env, { ...body, title: body.title, origin: publicOrigin(c) });
  return c.json(created, 201);
});

jobs.post('/:id/events', async (c) => {
  const id = jobId(c);
  const token = bearerToken(c);
  if (!token) throw new RoomtoneError('unauthorized', "send the job's publish token as Authorization: Bearer <token>");
  const event = await readJson(c, JobEventInput, MAX_JOB_EVENT_BYTES);
  return c.json(await postJobEvent(c.env, id, token, event));
});

jobs.get('/:id', async (c) => {
  const id = jobId(c);
  const raw = c.req.query('after');
  let after: number | undefined;
  if (raw !== undefined) {
    after = Number(raw);
    if (raw.trim() === '' || !Number.isSafeInteger(after) || after < 0) {
      throw new RoomtoneError('bad_request', 'after must be the last sequence number seen (an integer ≥ 0)');
    }
  }
  const status = await jobStatus(c.env, id, after);
  if (!status) throw new RoomtoneError('not_found', 'no such job (it may have expired)');
  return c.json({ ...status, ...jobLinks(publicOrigin(c), id) });
});

jobs.get('/:id/stream', async (c) => {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    return c.json({ error: { code: 'bad_request', message: 'this endpoint needs a WebSocket upgrade' } }, 426);
  }
  const id = jobId(c);
  await spendPerMinute(c, 'job-streams', numberVar(c.env.JOB_STREAMS_PER_MIN, 600), 'job stream connections');
  // The object accepts the socket itself, so it can hibernate with it.
  return openConnection(c, 'JOBS', c.env.JOBS.idFromName(id));
});
