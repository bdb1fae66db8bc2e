import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env.ts';
import { guardJoin, recordJoinFailure } from '../limits.ts';
import { RoomtoneError, normalizeRoomCode } from '../../protocol/index.ts';
import { MAX_ANALYZE_BODY_BYTES, STREAM_ID_PATTERN } from '../../protocol/analysis-messages.ts';
import { ROOM_HEADER, STREAM_HEADER } from '../../durable/analysis-stream.ts';
import { decodeWav, WavError } from '../../../wasm/wav.ts';
import { analyzeSamples, OfflineRateError } from '../../../wasm/dsp/offline.ts';
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
  const stub = c.env.ANALYSIS.get(c.env.ANALYSIS.idFromName(objectName));
  return stub.fetch(new Request(c.req.raw.url, { method: 'GET', headers }));
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
  try {
    return c.json(analyzeSamples(await loadKissFFT(), wav.samples, wav.sampleRate));
  } catch (e) {
    if (e instanceof OfflineRateError) throw new RoomtoneError('unsupported', e.message);
    throw e;
  }
});

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
