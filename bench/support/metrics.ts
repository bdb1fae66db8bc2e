// Evaluation measures for the DSP benchmark, after mir_eval's conventions.
import { hzToMidi } from '../../wasm/dsp/notes.ts';

export interface OnsetScore {
  precision: number;
  recall: number;
  f: number;
  tp: number;
  fp: number;
  fn: number;
  /** Mean signed error of the matched onsets, seconds. */
  meanError: number;
}

/** Greedy one-to-one matching of sorted estimates to sorted references within ±tol seconds. */
export function scoreOnsets(est: number[], ref: number[], tol = 0.05): OnsetScore {
  const e = [...est].sort((a, b) => a - b);
  const r = [...ref].sort((a, b) => a - b);
  const used = new Uint8Array(e.length);
  let tp = 0;
  let errSum = 0;
  for (const t of r) {
    let best = -1;
    let bestD = Infinity;
    for (let i = 0; i < e.length; i++) {
      if (used[i]) continue;
      const d = Math.abs(e[i] - t);
      if (d <= tol && d < bestD) {
        bestD = d;
        best = i;
      }
      if (e[i] > t + tol) break;
    }
    if (best >= 0) {
      used[best] = 1;
      tp++;
      errSum += e[best] - t;
    }
  }
  const fp = e.length - tp;
  const fn = r.length - tp;
  const precision = e.length ? tp / e.length : r.length ? 0 : 1;
  const recall = r.length ? tp / r.length : 1;
  const f = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f, tp, fp, fn, meanError: tp ? errSum / tp : 0 };
}

export interface PitchFrame {
  t: number;
  /** Hz, or null/0 when unvoiced. */
  f0: number | null;
}

export interface PitchScore {
  /** Voiced reference frames whose estimate is within 50 cents. */
  rpa: number;
  /** Voiced reference frames estimated voiced with an error over 20%. */
  gpe: number;
  voicingRecall: number;
  voicingFalseAlarm: number;
  voicedFrames: number;
  unvoicedFrames: number;
}

/**
 * Frame-level pitch measures. `truth(t)` gives the reference f0 at time t
 * (null when unvoiced, undefined to skip the frame). RPA counts a frame the
 * estimator called unvoiced as wrong (our output has no pitch there); GPE is
 * over frames both call voiced, as is usual.
 */
export function scorePitch(frames: PitchFrame[], truth: (t: number) => number | null | undefined): PitchScore {
  let voiced = 0;
  let unvoiced = 0;
  let correct = 0;
  let bothVoiced = 0;
  let gross = 0;
  let recalled = 0;
  let falseAlarm = 0;
  for (const fr of frames) {
    const ref = truth(fr.t);
    if (ref === undefined) continue;
    const est = fr.f0 && fr.f0 > 0 ? fr.f0 : null;
    if (ref === null) {
      unvoiced++;
      if (est !== null) falseAlarm++;
      continue;
    }
    voiced++;
    if (est === null) continue;
    recalled++;
    bothVoiced++;
    if (Math.abs(hzToMidi(est) - hzToMidi(ref)) <= 0.5) correct++;
    if (Math.abs(est / ref - 1) > 0.2) gross++;
  }
  return {
    rpa: voiced ? correct / voiced : 0,
    gpe: bothVoiced ? gross / bothVoiced : 0,
    voicingRecall: voiced ? recalled / voiced : 0,
    voicingFalseAlarm: unvoiced ? falseAlarm / unvoiced : 0,
    voicedFrames: voiced,
    unvoicedFrames: unvoiced,
  };
}
