// The room's view of the agent's audio clock: a straight line through recent
// (server time, sample) reports, robust to outliers. The agent stamps each
// report with its own server-time estimate, so network delay does not enter;
// what remains is callback jitter and the odd late or stale report, which a
// median-based rejection pass removes before the final least-squares fit.

export interface ClockPoint {
  serverMs: number;
  sample: number;
}

export interface ClockLine {
  /** Samples per second of server time: the device's real rate, drift included. */
  rate: number;
  /** Reference instant and the fitted sample there. */
  refMs: number;
  refSample: number;
  points: number;
  /** Robust spread of the residuals, in ms. */
  residualMs: number;
}

export interface ClockFitOptions {
  windowMs: number;
  maxPoints: number;
  minPoints: number;
  /** Residuals beyond this many robust deviations (and beyond floorMs) are outliers. */
  rejectSigmas: number;
  floorMs: number;
}

export const DEFAULT_CLOCK_FIT: ClockFitOptions = { windowMs: 20_000, maxPoints: 400, minPoints: 8, rejectSigmas: 4, floorMs: 1 };

export function lineSampleAt(line: ClockLine, serverMs: number): number {
  return line.refSample + ((serverMs - line.refMs) / 1000) * line.rate;
}

export class ClockLineFit {
  private points: ClockPoint[] = [];
  readonly options: ClockFitOptions;
  /** Nominal rate, the prior for the residual scale. */
  private readonly nominalRate: number;

  constructor(nominalRate: number, options: Partial<ClockFitOptions> = {}) {
    this.nominalRate = nominalRate;
    this.options = { ...DEFAULT_CLOCK_FIT, ...options };
  }

  get size(): number {
    return this.points.length;
  }

  /** Time covered by the current reports, in ms. */
  get spanMs(): number {
    return this.points.length < 2 ? 0 : this.points[this.points.length - 1].serverMs - this.points[0].serverMs;
  }

  snapshot(): readonly ClockPoint[] {
    return this.points;
  }

  reset(): void {
    this.points = [];
  }

  add(p: ClockPoint): void {
    const last = this.points.at(-1);
    // A report older than the newest is a late packet: it carries nothing new.
    if (last && p.serverMs <= last.serverMs) return;
    this.points.push(p);
    const { windowMs, maxPoints } = this.options;
    let drop = 0;
    while (drop < this.points.length && p.serverMs - this.points[drop].serverMs > windowMs) drop++;
    if (this.points.length - drop > maxPoints) drop = this.points.length - maxPoints;
    if (drop) this.points.splice(0, drop);
  }

  fit(): ClockLine | null {
    const pts = this.points;
    if (pts.length < this.options.minPoints) return null;
    // A robust seed first (median of slopes across half the window, median
    // intercept), so outliers cannot drag the line that judges them.
    const seed = medianLine(pts);
    if (!seed) return null;
    const res = pts.map((p) => ((p.sample - lineSampleAt(seed, p.serverMs)) / this.nominalRate) * 1000);
    const mad = median(res.map((r) => Math.abs(r)));
    const limit = Math.max(this.options.floorMs, this.options.rejectSigmas * 1.4826 * mad);
    const keep = res.map((r) => Math.abs(r) <= limit);
    const line = leastSquares(pts, keep) ?? seed;
    line.residualMs = 1.4826 * mad;
    return line;
  }
}

/** The line through the reports with a rate already known: only its position is estimated. */
export function fitAtRate(fit: ClockLineFit, rate: number): ClockLine | null {
  const pts = fit.snapshot();
  if (pts.length < fit.options.minPoints) return null;
  const refMs = pts[pts.length >> 1].serverMs;
  const refSample = median(pts.map((p) => p.sample - ((p.serverMs - refMs) / 1000) * rate));
  return { rate, refMs, refSample, points: pts.length, residualMs: 0 };
}

function medianLine(pts: ClockPoint[]): ClockLine | null {
  const half = pts.length >> 1;
  const slopes: number[] = [];
  for (let i = 0; i + half < pts.length; i++) {
    const dt = (pts[i + half].serverMs - pts[i].serverMs) / 1000;
    if (dt > 0) slopes.push((pts[i + half].sample - pts[i].sample) / dt);
  }
  if (slopes.length === 0) return null;
  const rate = median(slopes);
  const refMs = pts[pts.length >> 1].serverMs;
  const refSample = median(pts.map((p) => p.sample - ((p.serverMs - refMs) / 1000) * rate));
  return { rate, refMs, refSample, points: pts.length, residualMs: 0 };
}

function leastSquares(pts: ClockPoint[], keep: boolean[] | null): ClockLine | null {
  // Centre both axes: sample counts near 1e9 and epoch milliseconds near 1e12
  // would otherwise lose the precision the fit needs.
  let n = 0;
  let mt = 0;
  let ms = 0;
  for (let i = 0; i < pts.length; i++) {
    if (keep && !keep[i]) continue;
    n++;
    mt += pts[i].serverMs;
    ms += pts[i].sample;
  }
  if (n < 2) return null;
  mt /= n;
  ms /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < pts.length; i++) {
    if (keep && !keep[i]) continue;
    const dt = (pts[i].serverMs - mt) / 1000;
    sxx += dt * dt;
    sxy += dt * (pts[i].sample - ms);
  }
  if (sxx === 0) return null;
  return { rate: sxy / sxx, refMs: mt, refSample: ms, points: n, residualMs: 0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
