// Draws the room's playhead at display rate from the client's local model of
// the transport (anchor + clock offset); nothing here waits for the network.

import { formatTime, type Anchor } from '../../src/protocol/index.ts';
import type { RoomClient } from '../../src/client/room-client.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import { beatLight } from './beat.ts';
import { byId, setText } from './dom.ts';

export interface DrawnFrame {
  /** The local instant (epoch ms, high resolution) the frame was computed for. */
  local: number;
  seconds: number;
  beat_pos: number;
  text: string;
  flash: boolean;
}

const STATE_TEXT = { playing: 'Playing', paused: 'Paused', stopped: 'Stopped' } as const;

export class TransportView {
  /** The last frame put on screen, for tests and the debug handle. */
  drawn: DrawnFrame | null = null;
  private readonly time = byId('time');
  private readonly barbeat = byId('barbeat');
  private readonly beats = byId('beats');
  private readonly state = byId('state');
  private readonly bpm = byId('bpm');
  private readonly meter = byId('meter');
  private readonly announce = byId('announce');
  private cells: HTMLElement[] = [];
  private raf = 0;
  private readonly client: RoomClient;

  constructor(client: RoomClient) {
    this.client = client;
    client.on('anchor', ({ anchor, cause }) => this.onAnchor(anchor, cause));
  }

  start(): void {
    const frame = () => {
      this.draw();
      this.raf = requestAnimationFrame(frame);
    };
    this.raf = requestAnimationFrame(frame);
  }

  stop(): void {
    cancelAnimationFrame(this.raf);
  }

  private onAnchor(a: Anchor, cause: string): void {
    setText(this.bpm, formatBpm(a.bpm));
    setText(this.meter, `· ${a.beats_per_bar} beats a bar`);
    if (this.cells.length !== a.beats_per_bar) this.buildCells(a.beats_per_bar);
    // Screen readers hear what changed, never the 60 Hz playhead.
    if (cause === 'welcome') return;
    const p = this.client.position();
    const at = p ? formatTime(p.seconds) : '';
    const said: Record<string, string> = {
      play: `Playing from ${at}`,
      resume: `Playing from ${at}`,
      pause: `Paused at ${at}`,
      stop: 'Stopped',
      seek: `Moved to ${at}, bar ${p?.bar ?? ''}`,
      tempo: `Tempo ${formatBpm(a.bpm)} BPM`,
    };
    if (said[cause]) setText(this.announce, said[cause]);
  }

  private buildCells(n: number): void {
    this.beats.replaceChildren();
    this.cells = [];
    for (let i = 0; i < n; i++) {
      const cell = document.createElement('span');
      if (i === 0) cell.classList.add('down');
      this.beats.appendChild(cell);
      this.cells.push(cell);
    }
  }

  private draw(): void {
    const a = this.client.anchor;
    const local = localNow();
    const p = this.client.position(local);
    if (!a || !p) return;
    const serverNow = this.client.serverNow(local);
    const text = formatTime(p.seconds);
    setText(this.time, text);
    setText(this.barbeat, `${p.bar}.${p.beat_in_bar}`);
    // A scheduled start is "playing" with its anchor in the future: the playhead waits, and says so.
    const pendingMs = p.playing ? a.server_ms - serverNow : 0;
    setText(this.state, pendingMs > 0 ? `Starting in ${(pendingMs / 1000).toFixed(1)} s` : STATE_TEXT[p.status]);
    const light = beatLight(p.beat_pos, a.beats_per_bar, a.bpm, p.playing && pendingMs <= 0);
    this.cells.forEach((cell, i) => {
      cell.classList.toggle('current', i === light.index);
      cell.classList.toggle('flash', light.flash && i === light.index);
    });
    this.drawn = { local, seconds: p.seconds, beat_pos: p.beat_pos, text, flash: light.flash };
  }
}

export function formatBpm(bpm: number): string {
  return Number.isInteger(bpm) ? String(bpm) : bpm.toFixed(1);
}
