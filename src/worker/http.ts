import type { Context } from 'hono';
import type { z } from 'zod';
import { RoomtoneError, describeIssues } from '../protocol/index.ts';

export const MAX_JSON_BODY_BYTES = 16 * 1024;

/**
 * Reads and validates a JSON body. An empty body reads as `{}`, so a bare
 * `curl -X POST …/play` works wherever every field is optional; the schema
 * then decides whether `{}` is enough.
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, limit = MAX_JSON_BODY_BYTES): Promise<z.infer<S>> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > limit) throw new RoomtoneError('too_large', `body is limited to ${limit} bytes`);
  const text = await c.req.text();
  if (text.length > limit) throw new RoomtoneError('too_large', `body is limited to ${limit} bytes`);
  let raw: unknown = {};
  if (text.trim() !== '') {
    const type = c.req.header('content-type') ?? '';
    if (type && !/json|text\/plain|x-www-form-urlencoded/i.test(type)) {
      // curl -d labels bodies form-urlencoded and fetch labels strings text/plain:
      // accept JSON under either, refuse what is plainly something else.
      throw new RoomtoneError('unsupported', 'expected a JSON body (application/json)');
    }
    try {
      raw = JSON.parse(text);
    } catch {
      throw new RoomtoneError('bad_json', 'body is not valid JSON');
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new RoomtoneError('bad_request', 'invalid body', { issues: describeIssues(parsed.error) });
  return parsed.data;
}

export function bearerToken(c: Context): string | null {
  const h = c.req.header('authorization');
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : null;
}

/** The client's address as Cloudflare reports it; one bucket for all local callers. */
export function clientKey(c: Context): string {
  return c.req.header('cf-connecting-ip') ?? 'local';
}

export function publicOrigin(c: Context): string {
  return new URL(c.req.url).origin;
}
