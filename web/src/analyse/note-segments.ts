// Notes out of a pitch track: consecutive voiced frames on the same nearest
// semitone make one note; blips shorter than a minimum are dropped.

import { hzToMidi, midiName } from '../../../wasm/dsp/notes.ts';
import type { AnalysisDocumentFrame } from '../../../wasm/dsp/offline.ts';

export interface NoteSegment {
  note: string;
  midi: number;
  start: number;
  end: number;
}

export function noteSegments(frames: AnalysisDocumentFrame[], hopS: number, minS = 0.12): NoteSegment[] {
  const out: NoteSegment[] = [];
  let cur: NoteSegment | null = null;
  const close = () => {
    if (cur && cur.end - cur.start >= minS) out.push(cur);
    cur = null;
  };
  for (const f of frames) {
    if (f.f0 === null || !(f.f0 > 0)) {
      close();
      continue;
    }
    const midi = Math.round(hzToMidi(f.f0));
    if (cur && cur.midi === midi && f.t - cur.end <= hopS * 1.5) cur.end = f.t;
    else {
      close();
      cur = { note: midiName(midi), midi, start: f.t, end: f.t };
    }
  }
  close();
  return out;
}
