// Offset to server time, NTP-style: each ping/pong gives
//   up = t1 - t0 = d_up + θ,   down = t3 - t2 = d_down - θ
// where θ is the offset (server minus local) and d are the one-way delays.
// Queueing only ever adds delay, so the smallest `up` and the smallest `down`
// seen in a window each approach their path's minimum, and
//   θ = (min(up) - min(down)) / 2
// when the two minimum delays are equal (the assumption of every round-trip
// sync; an asymmetric path biases it by half the asymmetry). Taking the two
// minima separately converges far faster under jitter than waiting for one
// exchange that was lucky both ways (the lowest-RTT sample), which is what
// it falls back to with only a few samples.
//
// Server timestamps are whole milliseconds (deployed Workers even freeze
// Date.now() between I/O), so one sample is quantised to a millisecond; the
// average over several best samples dithers that away.

export interface SyncSample {
  offsetMs: number;
  rttMs: number;
  upMs: number;
  downMs: number;
  /** Local time the sample was taken. */
  atMs: number;
}

export interface ClockSyncOptions {
  /** Samples older than this are dropped, so slow drift between clocks is followed. */
  windowMs: number;
  maxSamples: number;
  /** How many of the lowest-RTT samples are averaged while there are too few for the split minima. */
  best: number;
  /** Samples needed before the estimate uses the separate minima of each direction. */
  splitAfter: number;
  /** `settled` compares this many of the lowest delays in each direction … */
  settleSamples: number;
  /** … and calls the estimate settled when they lie within this many ms. */
  settleSpreadMs: number;
}

/**
 * Two minutes of samples: long enough for the minima to converge, short
 * enough that the residual drift between two NTP-disciplined hosts (a few
 * ppm) moves the offset by well under a millisecond within it.
 */
export const DEFAULT_CLOCK_SYNC: ClockSyncOptions = { windowMs: 120_000, maxSamples: 256, best: 4, splitAfter: 8, settleSamples: 4, settleSpreadMs: 0.3 };

/** Local high-resolution wall clock in ms: monotonic within a page, aligned to the epoch. */
export function localNow(): number {
  return performance.timeOrigin + performance.now();
}

export class ClockSync {
  private samples: SyncSample[] = [];
  private estimate: { offsetMs: number; uncertaintyMs: number } | null = null;
  readonly options: ClockSyncOptions;

  constructor(options: Partial<ClockSyncOptions> = {}) {
    this.options = { ...DEFAULT_CLOCK_SYNC, ...options };
  }

  /** Adds one exchange: t0 local send, t1 server receive, t2 server send, t3 local receive. */
  add(t0: number, t1: number, t2: number, t3: number): SyncSample | null {
    if (![t0, t1, t2, t3].every(Number.isFinite) || t3 < t0 || t2 < t1) return null;
    // Whole-millisecond server stamps stand for the middle of their millisecond.
    const s1 = Number.isInteger(t1) ? t1 + 0.5 : t1;
    const s2 = Number.isInteger(t2) ? t2 + 0.5 : t2;
    const rttMs = Math.max(0, t3 - t0 - (s2 - s1));
    const sample = { offsetMs: (s1 - t0 + (s2 - t3)) / 2, rttMs, upMs: s1 - t0, downMs: t3 - s2, atMs: t3 };
    this.samples.push(sample);
    this.prune(t3);
    this.recompute();
    return sample;
  }

  private prune(now: number): void {
    const { windowMs, maxSamples } = this.options;
    this.samples = this.samples.filter((s) => now - s.atMs <= windowMs);
    if (this.samples.length > maxSamples) this.samples.splice(0, this.samples.length - maxSamples);
  }

  private recompute(): void {
    if (this.samples.length === 0) {
      this.estimate = null;
      return;
    }
    const best = [...this.samples].sort((a, b) => a.rttMs - b.rttMs).slice(0, this.options.best);
    let offsetMs: number;
    if (this.samples.length >= this.options.splitAfter) {
      let minUp = Infinity;
      let minDown = Infinity;
      for (const x of this.samples) {
        if (x.upMs < minUp) minUp = x.upMs;
        if (x.downMs < minDown) minDown = x.downMs;
      }
      offsetMs = (minUp - minDown) / 2;
    } else offsetMs = best.reduce((s, x) => s + x.offsetMs, 0) / best.length;
    // The honest bound stays half the best round trip: no method can see path asymmetry.
    this.estimate = { offsetMs, uncertaintyMs: best[0].rttMs / 2 };
  }

  get synced(): boolean {
    return this.estimate !== null;
  }

  /**
   * True once each direction's lowest few delays lie within `settleSpreadMs`
   * of each other: the lowest then sits about a third of that from its
   * floor, and more samples would barely move the estimate. Behind heavy
   * jitter that takes many samples; on a quiet path, a handful.
   */
  get settled(): boolean {
    const { settleSamples, settleSpreadMs } = this.options;
    if (this.samples.length < Math.max(this.options.splitAfter, 2 * settleSamples)) return false;
    const spread = (values: number[]) => {
      values.sort((a, b) => a - b);
      return values[settleSamples - 1] - values[0];
    };
    return spread(this.samples.map((x) => x.upMs)) <= settleSpreadMs && spread(this.samples.map((x) => x.downMs)) <= settleSpreadMs;
  }

  /** Server time minus local time, in ms. */
  get offsetMs(): number {
    return this.estimate?.offsetMs ?? 0;
  }

  /** Half the best round trip: the bound on the offset error if the path were fully asymmetric. */
  get uncertaintyMs(): number {
    return this.estimate?.uncertaintyMs ?? Infinity;
  }

  get bestRttMs(): number {
    return this.estimate ? this.estimate.uncertaintyMs * 2 : Infinity;
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  serverNow(local = localNow()): number {
    return local + this.offsetMs;
  }
}
