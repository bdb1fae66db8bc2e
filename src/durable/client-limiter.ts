import { DurableObject } from 'cloudflare:workers';

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
export class ClientLimiter extends DurableObject {
  private windows = new Map<string, number[]>();

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
}
