// Transport controls for controllers: buttons, two small forms and keyboard
// shortcuts. Every command goes over the room socket and is acknowledged; the
// screen itself changes only when the room's new anchor arrives, so what a
// controller sees is what every viewer sees.

import { TEMPO_MAX, TEMPO_MIN, type Anchor } from '../../src/protocol/index.ts';
import type { RoomClient } from '../../src/client/room-client.ts';
import { barStep } from './beat.ts';
import { byId, describeError, isTyping, setText, show } from './dom.ts';
import { formatBpm } from './transport-view.ts';

export class Controls {
  private readonly section = byId('controls');
  private readonly play = byId<HTMLButtonElement>('btn-play');
  private readonly status = byId('control-status');
  private readonly seekBar = byId<HTMLInputElement>('seek-bar');
  private readonly tempoInput = byId<HTMLInputElement>('tempo-bpm');
  private readonly client: RoomClient;
  private enabled = false;

  constructor(client: RoomClient) {
    this.client = client;
    client.on('anchor', ({ anchor }) => this.onAnchor(anchor));
    client.on('state', () => this.refresh());
    this.play.addEventListener('click', () => this.togglePlay());
    byId('btn-next-bar').addEventListener('click', () => this.run('Start on the next bar', () => client.play({ at: 'next_bar' })));
    byId('btn-stop').addEventListener('click', () => this.run('Stop', () => client.stop()));
    byId('btn-back').addEventListener('click', () => this.stepBars(-1));
    byId('btn-fwd').addEventListener('click', () => this.stepBars(1));
    byId<HTMLFormElement>('seek-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const a = client.anchor;
      const bar = Math.round(Number(this.seekBar.value));
      if (!a || !Number.isFinite(bar) || bar < 1) return this.say('Give a bar number from 1 up.');
      void this.run(`Go to bar ${bar}`, () => client.seek({ beats: (bar - 1) * a.beats_per_bar }));
    });
    byId<HTMLFormElement>('tempo-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const bpm = Number(this.tempoInput.value);
      if (!(bpm >= TEMPO_MIN && bpm <= TEMPO_MAX)) return this.say(`Tempo goes from ${TEMPO_MIN} to ${TEMPO_MAX} BPM.`);
      void this.run(`Tempo ${bpm}`, () => client.tempo({ bpm }));
    });
    document.addEventListener('keydown', (e) => this.onKey(e));
  }

  private refresh(): void {
    this.enabled = this.client.role === 'controller' && this.client.state === 'open';
    if (this.client.role === 'controller') show(this.section, true);
    for (const b of this.section.querySelectorAll('button')) b.disabled = !this.enabled;
  }

  private onAnchor(a: Anchor): void {
    this.play.firstChild!.textContent = a.status === 'playing' ? 'Pause ' : a.status === 'paused' ? 'Resume ' : 'Play ';
    if (document.activeElement !== this.tempoInput) this.tempoInput.value = formatBpm(a.bpm);
  }

  private togglePlay(): void {
    const s = this.client.anchor?.status;
    if (s === 'playing') void this.run('Pause', () => this.client.pause());
    else if (s === 'paused') void this.run('Resume', () => this.client.resume());
    else void this.run('Play', () => this.client.play());
  }

  private stepBars(bars: number): void {
    const a = this.client.anchor;
    const p = this.client.position();
    if (!a || !p) return;
    const beats = barStep(p.beat_pos, a.beats_per_bar, bars);
    void this.run(bars > 0 ? 'Next bar' : 'Previous bar', () => this.client.seek({ beats }));
  }

  private nudgeTempo(delta: number): void {
    const a = this.client.anchor;
    if (!a) return;
    const bpm = Math.min(TEMPO_MAX, Math.max(TEMPO_MIN, Math.round((a.bpm + delta) * 10) / 10));
    void this.run(`Tempo ${bpm}`, () => this.client.tempo({ bpm }));
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.enabled || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
    // Space and Enter on a focused button already click it.
    const onButton = e.target instanceof HTMLButtonElement || e.target instanceof HTMLAnchorElement;
    const big = e.shiftKey ? 4 : 1;
    switch (e.key) {
      case ' ':
        if (onButton) return;
        this.togglePlay();
        break;
      case '0':
      case 'Home':
        void this.run('Stop', () => this.client.stop());
        break;
      case 'ArrowLeft':
        this.stepBars(-big);
        break;
      case 'ArrowRight':
        this.stepBars(big);
        break;
      case 'ArrowUp':
        this.nudgeTempo(big);
        break;
      case 'ArrowDown':
        this.nudgeTempo(-big);
        break;
      case 'n':
      case 'N':
        void this.run('Start on the next bar', () => this.client.play({ at: 'next_bar' }));
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  private say(text: string): void {
    setText(this.status, text);
  }

  private async run(label: string, fn: () => Promise<unknown>): Promise<void> {
    if (!this.enabled) return;
    try {
      await fn();
      this.say(`${label} ✓`);
    } catch (e) {
      this.say(`${label} failed: ${describeError(e)}`);
    }
  }
}
