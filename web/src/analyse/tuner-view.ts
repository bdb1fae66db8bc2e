// The tuner: nearest note, how far off it is in cents (a needle on a
// -50..+50 scale) and the frequency, from the server's pitch estimates.

import type { AnalysisPitch } from '../../../src/protocol/analysis-messages.ts';
import { byId, setText } from '../dom.ts';

/** Within this many cents the needle turns green: in tune. */
export const IN_TUNE_CENTS = 5;

export class TunerView {
  private readonly note = byId('tuner-note');
  private readonly cents = byId('tuner-cents');
  private readonly hz = byId('tuner-hz');
  private readonly needle = byId('tuner-needle');
  private readonly box = byId('tuner');

  show(pitch: AnalysisPitch | null): void {
    if (!pitch) {
      this.box.dataset.voiced = 'false';
      return;
    }
    this.box.dataset.voiced = 'true';
    setText(this.note, pitch.note);
    const c = Math.round(pitch.cents);
    setText(this.cents, `${c > 0 ? '+' : c < 0 ? '−' : '±'}${Math.abs(c)}`);
    setText(this.hz, pitch.hz.toFixed(1));
    this.needle.style.left = `${50 + Math.max(-50, Math.min(50, pitch.cents))}%`;
    this.box.dataset.inTune = String(Math.abs(pitch.cents) <= IN_TUNE_CENTS);
  }

  clear(): void {
    this.box.dataset.voiced = 'false';
    setText(this.note, '–');
    setText(this.cents, '–');
    setText(this.hz, '–');
    this.needle.style.left = '50%';
  }
}
