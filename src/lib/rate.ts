/** A token bucket: `rate` per second sustained, `burst` at once. Lives in memory only. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly rate: number;
  readonly burst: number;
  constructor(rate: number, burst: number, now = Date.now()) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }
  take(now = Date.now(), n = 1): boolean {
    if (!this.has(n, now)) return false;
    this.tokens -= n;
    return true;
  }

  /** Whether `n` tokens are there at `now`, without taking them (for a check that comes before other checks). */
  has(n: number, now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    // Fractional amounts (seconds of audio) must not fail on rounding.
    return this.tokens >= n - 1e-9;
  }
}
