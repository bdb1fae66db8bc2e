// Reconnect timing, shared by the room client, the job watcher and the agent.

export interface BackoffOptions {
  /** Delay before the first retry. */
  minDelayMs: number;
  /** Ceiling of the exponential growth. */
  maxDelayMs: number;
  growth: number;
  /** Fraction of the delay drawn at random ("full jitter" when 1), so clients dropped together do not return together. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minDelayMs: 250, maxDelayMs: 10_000, growth: 2, jitter: 0.5 };

/** Delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(opts.maxDelayMs, opts.minDelayMs * opts.growth ** Math.max(0, attempt));
  return base * (1 - opts.jitter) + base * opts.jitter * random();
}
