import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { guardJoin, openConnection, recordJoinFailure, spendPerMinute } from '../limits.ts';
import { RoomtoneError, normalizeRoomCode } from '../../protocol/index.ts';
import { MAX_ANALYZE_BODY_BYTES, STREAM_ID_PATTERN } from '../../protocol/analysis-messages.ts';
import { ROOM_HEADER, STREAM_HEADER } from '../../durable/analysis-stream.ts';
import { decodeWav, WavError } from '../../../wasm/wav.ts';
import { analyzeSamples, analysisRate, analysisSteps, OfflineRateError, type AnalysisDocument } from '../../../wasm/dsp/offline.ts';
import { createJob, type JobPublisher } from '../../lib/jobs.ts';
import { publicOrigin } from '../http.ts';
import { numberVar } from '../../lib/env-vars.ts';
import type { DecodedWav } from '../../../wasm/wav.ts';
import { loadKissFFT } from '../../../wasm/kissfft-workerd.ts';

/**
 * Live analysis streams and offline analysis, mounted at /api/v1:
 *   WS   /analysis/:id                    a free-standing stream
 *   WS   /rooms/:code/analysis/:name      a stream owned by a room (onsets carry its beat)
 *   POST /analyze                         a WAV body in, the analysis document out
 * The worker only checks the request line and forwards the upgrade: the
 * AnalysisStream object accepts the socket, so it can hibernate.
 */
export const analysis = new Hono<AppEnv>();

function needsUpgrade(c: Context<AppEnv>): Response | null {
  if (c.req.header('upgrade')?.toLowerCase() === 'websocket') return null;
  return c.json({ error: { code: 'bad_request', message: 'this endpoint needs a WebSocket upgrade' } }, 426);
}

/** The upgrade request with the stream's identity set by the worker (never by the client). */
function forward(c: Context<AppEnv>, objectName: string, stream: string, room: string | null): Promise<Response> {
  const headers = new Headers(c.req.raw.headers);
  headers.set(STREAM_HEADER, stream);
  if (room) headers.set(ROOM_HEADER, room);
  else headers.delete(ROOM_HEADER);
  return openConnection(c, 'ANALYSIS', c.env.ANALYSIS.idFromName(objectName), new Request(c.req.raw.url, { method: 'GET', headers }));
}

analysis.get('/analysis/:id', async (c) => {
  const id = c.req.param('id');
  if (!STREAM_ID_PATTERN.test(id)) throw new RoomtoneError('bad_request', 'stream ids are 1-64 letters, digits, _ or -');
  const refused = needsUpgrade(c);
  if (refused) return refused;
  return forward(c, `stream:${id}`, id, null);
});

analysis.get('/rooms/:code/analysis/:name', async (c) => {
  const name = c.req.param('name');
  if (!STREAM_ID_PATTERN.test(name)) throw new RoomtoneError('bad_request', 'stream names are 1-64 letters, digits, _ or -');
  const refused = needsUpgrade(c);
  if (refused) return refused;
  await guardJoin(c);
  const code = normalizeRoomCode(c.req.param('code') ?? '');
  if (!code || !(await c.env.TRANSPORT.get(c.env.TRANSPORT.idFromName(code)).exists())) {
    await recordJoinFailure(c);
    throw new RoomtoneError('not_found', 'no room with that code (it may have expired)');
  }
  return forward(c, `room:${code}:${name}`, name, code);
});

analysis.post('/analyze', async (c) => {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_ANALYZE_BODY_BYTES) throw new RoomtoneError('too_large', `WAV bodies are limited to ${MAX_ANALYZE_BODY_BYTES} bytes`);
  const body = await readLimited(c.req.raw, MAX_ANALYZE_BODY_BYTES);
  if (body.byteLength === 0) throw new RoomtoneError('bad_request', 'send a WAV file as the request body');
  let wav;
  try {
    wav = decodeWav(body);
  } catch (e) {
    if (e instanceof WavError) throw new RoomtoneError(e.code === 'empty' ? 'bad_request' : 'unsupported', e.message);
    throw e;
  }
  if (wantsAsync(c)) {
    try {
      analysisRate(wav.sampleRate); // refuse an unusable rate now, not in the job
    } catch (e) {
      if (e instanceof OfflineRateError) throw new RoomtoneError('unsupported', e.message);
      throw e;
    }
    return startAnalysisJob(c, wav);
  }
  try {
    return c.json(analyzeSamples(await loadKissFFT(), wav.samples, wav.sampleRate));
  } catch (e) {
    if (e instanceof OfflineRateError) throw new RoomtoneError('unsupported', e.message);
    throw e;
  }
});

/** The document of a finished analysis job, for as long as the job is kept. */
analysis.get('/analyze/results/:job_id', async (c) => {
  const id = c.req.param('job_id');
  if (!/^[A-Za-z0-9_-]{10,100}$/.test(id)) throw new RoomtoneError('not_found', 'no such result');
  const json = await c.env.RESULTS.get(c.env.RESULTS.idFromName(id)).get();
  if (json === null) throw new RoomtoneError('not_found', 'no such result (it may have expired, or the job has not finished)');
  return new Response(json, { headers: { 'content-type': 'application/json' } });
});

/** `?async=1` or `Prefer: respond-async` (RFC 7240): answer at once with a job to watch. */
function wantsAsync(c: Context<AppEnv>): boolean {
  const q = c.req.query('async');
  return q === '1' || q === 'true' || /(^|[\s,])respond-async([\s,;]|$)/i.test(c.req.header('prefer') ?? '');
}

const ANALYZE_JOBS_PER_MIN = 20;

/**
 * Runs the analysis as a job: 202 with the job's links at once, then real
 * stages (decoded, analysing with progress, storing) on the job stream, and a
 * `completed` event whose `result_url` serves the same document the
 * synchronous call returns. The body was decoded before answering, so a bad
 * file still fails the request itself.
 */
async function startAnalysisJob(c: Context<AppEnv>, wav: DecodedWav): Promise<Response> {
  await spendPerMinute(c, 'analyze-jobs', ANALYZE_JOBS_PER_MIN, 'analysis jobs');
  const origin = publicOrigin(c);
  const retentionS = numberVar(c.env.JOB_RETENTION_S, 7 * 86_400);
  const job = await createJob(c.env, { kind: 'analysis.file', title: `analysis of ${wav.durationS.toFixed(1)} s of audio`, origin });
  const resultUrl = `${origin}/api/v1/analyze/results/${job.job_id}`;
  c.executionCtx.waitUntil(runAnalysisJob(c.env, job.publisher, wav, resultUrl, retentionS));
  return c.json({ job_id: job.job_id, stream_url: job.stream_url, status_url: job.status_url, result_url: resultUrl }, 202);
}

async function runAnalysisJob(env: AppEnv['Bindings'], publisher: JobPublisher, wav: DecodedWav, resultUrl: string, retentionS: number): Promise<void> {
  let stage = 'decode';
  try {
    await publisher.progress(5, stage, `${wav.durationS.toFixed(1)} s at ${wav.sampleRate} Hz, ${wav.channels} channel(s)`);
    stage = 'analyse';
    const steps = analysisSteps(await loadKissFFT(), wav.samples, wav.sampleRate);
    let doc: AnalysisDocument;
    let reported = 5;
    for (;;) {
      const r = steps.next();
      if (r.done) {
        doc = r.value;
        break;
      }
      // Progress from 5 to 90 % as the audio is analysed, an event per 10 %.
      const p = 5 + Math.floor(r.value * 85);
      if (p >= reported + 10) {
        reported = p;
        await publisher.progress(p, stage);
      }
    }
    stage = 'store';
    await publisher.progress(95, stage);
    const id = resultUrl.slice(resultUrl.lastIndexOf('/') + 1);
    await env.RESULTS.get(env.RESULTS.idFromName(id)).put(JSON.stringify(doc), retentionS);
    await publisher.completed(resultUrl, { duration_s: wav.durationS, frames: doc.frames.length, onsets: doc.onsets.length });
  } catch (e) {
    const message = e instanceof OfflineRateError ? e.message : 'the analysis failed';
    if (!(e instanceof OfflineRateError)) console.error('analysis job failed', e instanceof Error ? e.name : 'unknown');
    await publisher.error(message, !(e instanceof OfflineRateError), stage).catch(() => {});
  }
}

/** Reads a body, refusing it as soon as it passes `limit` bytes (chunked bodies have no length to check first). */
async function readLimited(req: Request, limit: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new RoomtoneError('too_large', `WAV bodies are limited to ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.byteLength;
  }
  return out;
}
