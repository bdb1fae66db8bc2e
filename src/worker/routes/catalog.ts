import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { publicOrigin, readJson } from '../http.ts';
import { requireAdmin } from '../admin.ts';
import { createJob } from '../../lib/jobs.ts';
import { ingestTrack, registry, removeLandmarks, type IngestSource } from '../../lib/catalog.ts';
import { decodeWav, WAV_MAX_CHANNELS, WAV_MAX_RATE, WAV_MIN_RATE, WavError, type WavErrorCode } from '../../../wasm/wav.ts';
import {
  FingerprintUpload,
  MAX_CATALOG_JSON_BYTES,
  MAX_CATALOG_WAV_BYTES,
  MAX_TRACK_SECONDS,
  RoomtoneError,
  TRACK_ID_PATTERN,
  WavUploadQuery,
  describeIssues,
  type IngestAccepted,
  type TrackDeleted,
  type TrackList,
} from '../../protocol/index.ts';

export const catalog = new Hono<AppEnv>();

const WAV_PROBLEMS: Record<WavErrorCode, string> = {
  not_wav: 'not a readable WAV file (RIFF/RIFX/RF64 WAVE with a fmt and a data chunk)',
  empty: 'the WAV data chunk holds no complete sample frame',
  unsupported_format: 'unsupported WAV sample format; use PCM 8/16/24/32-bit or 32/64-bit float',
  unsupported_rate: `unsupported WAV sample rate or channel count; expected ${WAV_MIN_RATE} to ${WAV_MAX_RATE} Hz and 1 to ${WAV_MAX_CHANNELS} channels`,
};

const WAV_TYPES = /^(audio\/(wav|x-wav|wave|vnd\.wave)|application\/octet-stream)\b/i;

function trackId(c: Context<AppEnv>): number {
  const raw = c.req.param('id') ?? '';
  if (!TRACK_ID_PATTERN.test(raw)) throw new RoomtoneError('not_found', 'no such track');
  return Number(raw);
}

function truthy(v: string | undefined): boolean {
  return v === '1' || v === 'true';
}

async function readBody(c: Context<AppEnv>, limit: number): Promise<ArrayBuffer> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > limit) throw new RoomtoneError('too_large', `body is limited to ${limit} bytes`);
  const body = await c.req.arrayBuffer();
  if (body.byteLength > limit) throw new RoomtoneError('too_large', `body is limited to ${limit} bytes`);
  if (body.byteLength === 0) throw new RoomtoneError('bad_request', 'empty body: send a WAV file or JSON fingerprints');
  return body;
}

/** WAV body with metadata in the query string (or x-track-* headers). */
async function wavSource(c: Context<AppEnv>) {
  const parsed = WavUploadQuery.safeParse({
    title: c.req.query('title') ?? c.req.header('x-track-title'),
    artist: c.req.query('artist') ?? c.req.header('x-track-artist'),
    wait: c.req.query('wait'),
  });
  if (!parsed.success) throw new RoomtoneError('bad_request', 'invalid track metadata', { issues: describeIssues(parsed.error) });
  const body = await readBody(c, MAX_CATALOG_WAV_BYTES);
  let wav;
  try {
    wav = decodeWav(body);
  } catch (e) {
    // WavError messages quote header fields (rate, channels, chunk ids): the
    // client's own bytes. The answer names the problem, not the values.
    if (e instanceof WavError) throw new RoomtoneError(e.code === 'not_wav' || e.code === 'empty' ? 'bad_request' : 'unsupported', WAV_PROBLEMS[e.code]);
    throw e;
  }
  if (wav.durationS > MAX_TRACK_SECONDS) throw new RoomtoneError('too_large', `tracks are limited to ${MAX_TRACK_SECONDS} s`);
  if (wav.durationS < 1) throw new RoomtoneError('bad_request', 'the recording is shorter than one second');
  const source: IngestSource = { kind: 'audio', samples: wav.samples, sample_rate: wav.sampleRate };
  return { meta: { title: parsed.data.title, artist: parsed.data.artist ?? null }, duration: wav.durationS, source };
}

async function fingerprintSource(c: Context<AppEnv>) {
  const body = await readJson(c, FingerprintUpload, MAX_CATALOG_JSON_BYTES);
  const source: IngestSource = { kind: 'fingerprints', hashes: body.hashes, times: body.times, duration_s: body.duration_s };
  return { meta: { title: body.title, artist: body.artist ?? null }, duration: body.duration_s, source };
}

catalog.post('/tracks', async (c) => {
  requireAdmin(c, 'adding tracks');
  const type = c.req.header('content-type') ?? '';
  let input;
  if (/json/i.test(type)) input = await fingerprintSource(c);
  else if (WAV_TYPES.test(type)) input = await wavSource(c);
  else throw new RoomtoneError('unsupported', 'send audio/wav (metadata in ?title=&artist=) or application/json fingerprints');

  const reg = registry(c.env);
  const track = await reg.registerTrack({ ...input.meta, duration_s: input.duration, job_id: null });
  const origin = publicOrigin(c);
  const resultUrl = `${origin}/api/v1/catalog/tracks/${track.track_id}`;
  const job = await createJob(c.env, { kind: 'catalog.ingest', title: `ingest ${input.meta.title}`.slice(0, 200), origin });
  await reg.setJob(track.track_id, job.job_id);
  track.job_id = job.job_id;
  const work = ingestTrack(c.env, track, input.source, job.publisher, resultUrl);
  const accepted: IngestAccepted = { track_id: track.track_id, job_id: job.job_id, stream_url: job.stream_url, status_url: job.status_url, track };
  if (truthy(c.req.query('wait'))) {
    const done = await work;
    return c.json({ ...accepted, track: done } satisfies IngestAccepted, 201);
  }
  // The job reports the outcome; a failure is already recorded on the track and the job.
  c.executionCtx.waitUntil(work.catch(() => {}));
  return c.json(accepted, 202);
});

catalog.get('/tracks', async (c) => {
  const after = Number(c.req.query('after') ?? '0');
  const limit = Number(c.req.query('limit') ?? '100');
  if (!Number.isSafeInteger(after) || after < 0) throw new RoomtoneError('bad_request', 'after must be a track id (an integer ≥ 0)');
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RoomtoneError('bad_request', 'limit must be an integer from 1 to 1000');
  const tracks = await registry(c.env).listTracks(after, limit);
  const list: TrackList = { tracks, next_after: tracks.length === limit ? tracks[tracks.length - 1].track_id : null };
  return c.json(list);
});

catalog.get('/tracks/:id', async (c) => {
  const track = await registry(c.env).getTrack(trackId(c));
  if (!track) throw new RoomtoneError('not_found', 'no such track');
  return c.json(track);
});

catalog.delete('/tracks/:id', async (c) => {
  requireAdmin(c, 'deleting tracks');
  const id = trackId(c);
  // Unregister first: from now on no stream reports it, even before its landmarks are gone.
  const track = await registry(c.env).unregisterTrack(id);
  if (!track) throw new RoomtoneError('not_found', 'no such track');
  const removed = await removeLandmarks(c.env, id);
  return c.json({ deleted: true, track_id: id, fingerprints_removed: removed } satisfies TrackDeleted);
});
