import type { Env } from '../worker/env.ts';

/**
 * Connection leases: how the per-client limit on open WebSockets is counted
 * across objects without giving up hibernation.
 *
 * The worker takes a lease from the client's ClientLimiter before it forwards
 * an upgrade, and names it in LEASE_HEADER. The object that accepts the socket
 * keeps the lease as a hibernation tag (tags survive eviction, attachments
 * would need every object's own format) and gives it back from
 * webSocketClose/webSocketError. Those handlers are not guaranteed to run (an
 * object reset, a failed release call), so the limiter also asks the owning
 * object whether a lease is still held before it refuses anyone: a lost
 * release costs a round trip at the limit, never a client locked out.
 */
export const LEASE_HEADER = 'x-roomtone-conn-lease';

const TAG_PREFIX = 'conn:';
/** `<limiter object id (64 hex)>:<lease uuid>`. */
const LEASE_PATTERN = /^[0-9a-f]{64}:[0-9a-f-]{36}$/;

/** Objects that can hold a leased socket, by their binding name. */
export type LeaseOwner = 'TRANSPORT' | 'RELAYS' | 'ANALYSIS' | 'MATCH' | 'JOBS';
export const LEASE_OWNERS: readonly LeaseOwner[] = ['TRANSPORT', 'RELAYS', 'ANALYSIS', 'MATCH', 'JOBS'];

/** What every owner answers, so the limiter can check a lease whose release never came. */
export interface LeaseHolder {
  holdsLeases(limiterId: string, leases: string[]): Promise<boolean[]>;
}

export function leaseValue(limiterId: string, lease: string): string {
  return `${limiterId}:${lease}`;
}

/** The tags to accept an upgraded socket with: its lease, if the worker granted one. */
export function leaseTags(request: Request): string[] {
  const v = request.headers.get(LEASE_HEADER);
  return v && LEASE_PATTERN.test(v) ? [TAG_PREFIX + v] : [];
}

/** Gives a closed socket's lease back to its client's limiter (once per lease: a second release is a no-op there). */
export function releaseLease(ctx: DurableObjectState, env: Env, ws: WebSocket): void {
  let tags: string[];
  try {
    tags = ctx.getTags(ws);
  } catch {
    return; // not a hibernatable socket of this object
  }
  for (const tag of tags) releaseLeaseTag(ctx, env, tag);
}

/** Gives back the lease a tag names (from leaseTags); other tags are ignored. For sockets an object keeps itself, without hibernation. */
export function releaseLeaseTag(ctx: DurableObjectState, env: Env, tag: string): void {
  if (!tag.startsWith(TAG_PREFIX)) return;
  const [limiterId, lease] = tag.slice(TAG_PREFIX.length).split(':');
  const limiter = env.LIMITER.get(env.LIMITER.idFromString(limiterId));
  ctx.waitUntil(limiter.release(lease).catch(() => {}));
}

/**
 * Which of these leases name a socket this object still has open: among its
 * hibernatable sockets, or among `ownTags`, the lease tags of the sockets it
 * keeps itself.
 */
export function holdsLeases(ctx: DurableObjectState, limiterId: string, leases: string[], ownTags?: Iterable<string>): boolean[] {
  const own = ownTags ? new Set(ownTags) : null;
  return leases.map((lease) => {
    const tag = TAG_PREFIX + leaseValue(limiterId, lease);
    return ctx.getWebSockets(tag).length > 0 || (own?.has(tag) ?? false);
  });
}
