import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';
import { LEASE_OWNERS, type LeaseHolder, type LeaseOwner } from './connection-lease.ts';

export interface LimitVerdict {
  allowed: boolean;
  count: number;
  retry_after_s: number;
}

/**
 * One object per client (keyed by address): sliding-window counters that every
 * isolate of the worker shares, which a per-isolate map could not do. Counts
 * live in memory; an eviction forgives a client, which is the safe direction.
 */
export class ClientLimiter extends DurableObject<Env> {
  private windows = new Map<string, number[]>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Open connections are stored, unlike the rate windows: sockets outlive an
    // idle limiter's eviction, and forgetting them would reopen the limit.
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, owner TEXT NOT NULL, object TEXT NOT NULL, created_ms INTEGER NOT NULL, checked_ms INTEGER NOT NULL)',
    );
  }

  private recent(bucket: string, windowMs: number, now: number): number[] {
    const kept = (this.windows.get(bucket) ?? []).filter((t) => now - t < windowMs);
    this.windows.set(bucket, kept);
    return kept;
  }

  private verdict(times: number[], limit: number, windowMs: number, now: number): LimitVerdict {
    const allowed = times.length < limit;
    const retry = allowed ? 0 : Math.max(1, Math.ceil((times[0] + windowMs - now) / 1000));
    return { allowed, count: times.length, retry_after_s: retry };
  }

  /** Whether the bucket is under its limit, without counting. */
  async peek(bucket: string, limit: number, windowMs: number): Promise<LimitVerdict> {
    const now = Date.now();
    return this.verdict(this.recent(bucket, windowMs, now), limit, windowMs, now);
  }

  /** Counts one event when under the limit; refuses it otherwise. */
  async hit(bucket: string, limit: number, windowMs: number): Promise<LimitVerdict> {
    const now = Date.now();
    const times = this.recent(bucket, windowMs, now);
    const v = this.verdict(times, limit, windowMs, now);
    if (v.allowed) times.push(now);
    return v;
  }

  /** Counts one event whatever the limit (failures are recorded even while blocked). */
  async record(bucket: string, windowMs: number): Promise<void> {
    const now = Date.now();
    const times = this.recent(bucket, windowMs, now);
    if (times.length < 10_000) times.push(now);
  }

  // ---- open connections (see connection-lease.ts) ----

  /**
   * Grants a lease for one more open socket on `object` (an id of the `owner`
   * namespace) while the client holds fewer than `limit`. At the limit, leases
   * whose release may have been lost are first checked with their objects.
   */
  async acquire(owner: LeaseOwner, object: string, limit: number): Promise<LimitVerdict & { lease: string | null }> {
    if (this.openCount() >= limit) await this.reclaim(Date.now());
    const count = this.openCount();
    if (count >= limit) return { allowed: false, count, retry_after_s: LEASE_RETRY_S, lease: null };
    const lease = crypto.randomUUID();
    const now = Date.now();
    this.ctx.storage.sql.exec('INSERT INTO leases (id, owner, object, created_ms, checked_ms) VALUES (?, ?, ?, ?, ?)', lease, owner, object, now, now);
    return { allowed: true, count: count + 1, retry_after_s: 0, lease };
  }

  async release(lease: string): Promise<void> {
    this.ctx.storage.sql.exec('DELETE FROM leases WHERE id = ?', lease);
  }

  async openConnections(): Promise<number> {
    return this.openCount();
  }

  private openCount(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM leases').one().n;
  }

  /**
   * Drops leases their objects no longer hold. Only leases old enough for
   * their upgrade to have finished (a granted lease is not on a socket until
   * the object accepts it) and not checked recently, so a client hammering at
   * its limit costs each object one check per interval.
   */
  private async reclaim(now: number): Promise<void> {
    const rows = this.ctx.storage.sql
      .exec<{ id: string; owner: string; object: string }>(
        'SELECT id, owner, object FROM leases WHERE created_ms <= ? AND checked_ms <= ?',
        now - LEASE_SETTLE_MS,
        now - LEASE_RECHECK_MS,
      )
      .toArray();
    const byObject = new Map<string, { owner: LeaseOwner; object: string; ids: string[] }>();
    for (const r of rows) {
      if (!(LEASE_OWNERS as readonly string[]).includes(r.owner)) {
        this.ctx.storage.sql.exec('DELETE FROM leases WHERE id = ?', r.id);
        continue;
      }
      const k = `${r.owner}/${r.object}`;
      const group = byObject.get(k) ?? { owner: r.owner as LeaseOwner, object: r.object, ids: [] };
      group.ids.push(r.id);
      byObject.set(k, group);
    }
    const self = this.ctx.id.toString();
    await Promise.all(
      [...byObject.values()].map(async ({ owner, object, ids }) => {
        let held: boolean[];
        try {
          const ns = this.env[owner] as unknown as DurableObjectNamespace;
          const stub = ns.get(ns.idFromString(object)) as unknown as LeaseHolder;
          held = await stub.holdsLeases(self, ids);
        } catch {
          // An object that cannot answer cannot prove the socket is open:
          // forgive the lease (the failure direction that never locks out).
          held = ids.map(() => false);
        }
        const checked = Date.now();
        ids.forEach((id, i) => {
          if (held[i]) this.ctx.storage.sql.exec('UPDATE leases SET checked_ms = ? WHERE id = ?', checked, id);
          else this.ctx.storage.sql.exec('DELETE FROM leases WHERE id = ?', id);
        });
      }),
    );
  }
}

/** How long an upgrade may take between the lease and the object accepting the socket. */
const LEASE_SETTLE_MS = 10_000;
/** A lease confirmed held is not asked about again for this long. */
const LEASE_RECHECK_MS = 30_000;
/** An open-connection refusal lasts until a socket closes; this is only a hint. */
const LEASE_RETRY_S = 10;
