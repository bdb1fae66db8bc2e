// A scrolling timeline of the last few seconds: the room's beat grid (bar
// lines numbered), the onsets the server found and the level. The x axis is
// server time, so the grid and the onsets of every screen in the room line up.

import { positionAt, sampleAtBeats, type Anchor } from '../../../src/protocol/transport.ts';

export const TIMELINE_SECONDS = 8;

export interface TimedOnset {
  serverMs: number;
}

export interface LevelPoint {
  serverMs: number;
  db: number;
}

const COLORS = { bg: '#0b0d11', beat: '#2c313c', bar: '#5a6377', label: '#aab2c0', onset: '#ffd166', level: '#4cc9f055', now: '#eef1f6' };

/** Server time at which the transport reaches beat `b`, or null if it never does while playing from this anchor. */
function timeOfBeat(a: Anchor, b: number): number | null {
  if (a.status !== 'playing' || a.rate <= 0) return null;
  return a.server_ms + ((sampleAtBeats(a, b) - a.sample) / a.rate) * 1000;
}

export class Timeline {
  readonly onsets: TimedOnset[] = [];
  readonly levels: LevelPoint[] = [];
  private readonly canvas: HTMLCanvasElement;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
  }

  addOnset(serverMs: number): void {
    this.onsets.push({ serverMs });
  }

  addLevel(serverMs: number, db: number): void {
    this.levels.push({ serverMs, db });
  }

  clear(): void {
    this.onsets.length = 0;
    this.levels.length = 0;
  }

  draw(nowServerMs: number, anchor: Anchor | null): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext('2d');
    if (!g) return;
    const spanMs = TIMELINE_SECONDS * 1000;
    const from = nowServerMs - spanMs;
    const x = (t: number) => ((t - from) / spanMs) * w;
    this.prune(from);

    g.fillStyle = COLORS.bg;
    g.fillRect(0, 0, w, h);

    // The grid, drawn where the current line says each beat falls; it starts
    // where playing started (before that the playhead stood still).
    if (anchor && anchor.status === 'playing') {
      const start = Math.max(from, anchor.server_ms);
      const b0 = Math.ceil(positionAt(anchor, start).beat_pos - 1e-9);
      const b1 = Math.floor(positionAt(anchor, nowServerMs).beat_pos);
      g.font = `${11 * dpr}px system-ui, sans-serif`;
      for (let b = b0; b <= b1 && b - b0 < 512; b++) {
        const t = timeOfBeat(anchor, b);
        if (t === null) break;
        const isBar = ((b % anchor.beats_per_bar) + anchor.beats_per_bar) % anchor.beats_per_bar === 0;
        g.fillStyle = isBar ? COLORS.bar : COLORS.beat;
        g.fillRect(Math.round(x(t)), 0, isBar ? 2 * dpr : dpr, h);
        if (isBar) {
          g.fillStyle = COLORS.label;
          g.fillText(String(Math.floor(b / anchor.beats_per_bar) + 1), x(t) + 4 * dpr, 12 * dpr);
        }
      }
    }

    // Level as a faint area: -60 dBFS at the bottom, 0 at the top.
    if (this.levels.length > 1) {
      g.fillStyle = COLORS.level;
      g.beginPath();
      g.moveTo(x(this.levels[0].serverMs), h);
      for (const p of this.levels) g.lineTo(x(p.serverMs), h - (Math.max(0, p.db + 60) / 60) * h);
      g.lineTo(x(this.levels[this.levels.length - 1].serverMs), h);
      g.closePath();
      g.fill();
    }

    g.fillStyle = COLORS.onset;
    for (const o of this.onsets) g.fillRect(Math.round(x(o.serverMs)) - dpr, h * 0.2, 3 * dpr, h * 0.8);

    g.fillStyle = COLORS.now;
    g.fillRect(w - 2 * dpr, 0, 2 * dpr, h);
  }

  private prune(from: number): void {
    while (this.onsets.length && this.onsets[0].serverMs < from) this.onsets.shift();
    while (this.levels.length > 2 && this.levels[1].serverMs < from) this.levels.shift();
  }
}
