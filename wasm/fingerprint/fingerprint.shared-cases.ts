// Identification cases run both in Node (fingerprint.test.ts) and inside
// workerd (fingerprint.workers.test.ts): the same code must give the same
// answers wherever it runs.
import type { KissFFT } from '../kissfft.ts';
import { FINGERPRINT_PRESETS, MATCH_PRESETS } from './config.ts';
import { MemoryIndex } from './memory-index.ts';
import { LiveMatcher, type LiveMatch } from './live.ts';
import { fingerprintSignal } from './stream.ts';
import { synthMusic } from './test-signals.ts';

export const RATE = 22050;

export interface Catalog {
  index: MemoryIndex;
  tracks: Float32Array[];
  /** Track ids are 1-based: id = position + 1. */
  hashesPerSecond: number;
}

export function buildCatalog(kiss: KissFFT, count: number, seconds: number, seed = 100): Catalog {
  const index = new MemoryIndex();
  const tracks: Float32Array[] = [];
  let hashes = 0;
  for (let i = 0; i < count; i++) {
    const x = synthMusic(seed + i, seconds, RATE, 3);
    tracks.push(x);
    const fp = fingerprintSignal(kiss, FINGERPRINT_PRESETS.default, x, RATE);
    index.add(i + 1, fp.hashes, fp.times);
    hashes += fp.hashes.length;
  }
  return { index, tracks, hashesPerSecond: hashes / (count * seconds) };
}

export interface StreamOutcome {
  matches: LiveMatch[];
  audioS: number;
}

/** Streams `query` in chunks of `chunkS` seconds, as a live client would, and collects the reported matches. */
export async function streamQuery(kiss: KissFFT, index: MemoryIndex, query: Float32Array, rate = RATE, chunkS = 0.1): Promise<StreamOutcome> {
  const m = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, MATCH_PRESETS.default, rate, (h, cap) => index.lookup(h, cap));
  const matches: LiveMatch[] = [];
  const step = Math.round(chunkS * rate);
  try {
    for (let o = 0; o < query.length; o += step) {
      const r = await m.push(query.subarray(o, Math.min(query.length, o + step)));
      if (r.match) matches.push(r.match);
    }
    return { matches, audioS: m.audioS };
  } finally {
    m.dispose();
  }
}

export function excerpt(track: Float32Array, startS: number, seconds: number, rate = RATE): Float32Array {
  return track.slice(Math.round(startS * rate), Math.round((startS + seconds) * rate));
}
