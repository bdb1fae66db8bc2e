import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KissFFT } from '../kissfft.ts';
import { loadKissFFT } from '../kissfft-node.ts';
import { decodeWav, encodeWav } from '../wav.ts';
import { FINGERPRINT_PRESETS, fingerprintSignal, LiveMatcher, MemoryIndex, type LiveMatch, OffsetVoter, MATCH_PRESETS, packHash, PeakPicker, Resampler, unpackHash, validateConfig } from './index.ts';
import { addNoise, changeSpeed, gain, noise, rms, rng, synthMusic, telephone } from './test-signals.ts';
import { AlignTable } from './align-table.ts';
import { buildCatalog, excerpt, RATE, streamQuery, type Catalog } from './fingerprint.shared-cases.ts';
import type { IndexRows } from './matcher.ts';
import { StreamFingerprinter } from './stream.ts';

/** Index rows as sorted hash:track@time strings: answers compare whatever order they come in. */
function rowsOf(r: IndexRows): string[] {
  return Array.from(r.hashes, (h, i) => `${h}:${r.tracks[i]}@${r.times[i]}`).sort();
}

let kiss: KissFFT;
let catalog: Catalog;

beforeAll(async () => {
  kiss = await loadKissFFT();
  catalog = buildCatalog(kiss, 8, 40);
});

function sine(hz: number, seconds: number, rate: number): Float32Array {
  const x = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < x.length; i++) x[i] = Math.sin((2 * Math.PI * hz * i) / rate);
  return x;
}

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('Resampler', () => {
  it('keeps a 1 kHz sine at its frequency and amplitude when halving the rate', () => {
    const y = Resampler.convert(sine(1000, 1, 22050), 22050, 11025);
    expect(y.length).toBe(11025);
    const ref = sine(1000, 1, 11025);
    let err = 0;
    for (let i = 200; i < y.length - 200; i++) err = Math.max(err, Math.abs(y[i] - ref[i]));
    expect(err).toBeLessThan(0.01);
  });

  it('attenuates a tone above the new Nyquist frequency by more than 50 dB', () => {
    const y = Resampler.convert(sine(7000, 1, 22050), 22050, 11025);
    expect(20 * Math.log10(rms(y.subarray(200, -200)) / Math.SQRT1_2)).toBeLessThan(-50);
  });

  it('rejects tones that would alias into the analysed band when designed for that band only', () => {
    const band = { passHz: 4200, stopHz: 7025 };
    // 7.5 kHz would fold to 3.5 kHz, inside the 250–4000 Hz the fingerprinter reads.
    const alias = Resampler.convert(sine(7500, 1, 22050), 22050, 11025, { band });
    expect(20 * Math.log10(rms(alias.subarray(200, -200)) / Math.SQRT1_2)).toBeLessThan(-50);
    const kept = Resampler.convert(sine(3000, 1, 22050), 22050, 11025, { band });
    expect(rms(kept.subarray(200, -200)) / Math.SQRT1_2).toBeCloseTo(1, 2);
  });

  it('gives the same output however the input is chunked', () => {
    const x = synthMusic(3, 2, 44100, 2);
    const whole = Resampler.convert(x, 44100, 11025);
    const r = new Resampler(44100, 11025, { maxChunk: 1000 });
    const out = new Float32Array(r.maxOutput(1000));
    const pieces: number[] = [];
    for (let o = 0, step = 1; o < x.length; o += step, step = (step * 7 + 3) % 997 + 1) {
      const n = r.process(x.subarray(o, Math.min(x.length, o + step)), out);
      for (let i = 0; i < n; i++) pieces.push(out[i]);
    }
    const n = Math.min(pieces.length, whole.length);
    expect(n).toBeGreaterThan(whole.length - 40);
    for (let i = 0; i < n; i++) expect(pieces[i]).toBeCloseTo(whole[i], 6);
  });

  it('decimates by a whole factor as a plain FIR filter: the unrolled short kernel (22.05 → 11.025 kHz) and the looped long one (44.1 → 11.025 kHz)', () => {
    const band = { passHz: 4200, stopHz: 7025 };
    for (const rate of [22050, 44100]) {
      const m = rate / 11025;
      // The kernel, read back through the resampler itself: an impulse at each of the m input phases.
      const taps: Array<[number, number]> = [];
      for (let p = 0; p < m; p++) {
        const impulse = new Float32Array(4096);
        impulse[2048 + p] = 1;
        const h = Resampler.convert(impulse, rate, 11025, { band });
        for (let n = 0; n < h.length; n++) if (h[n] !== 0) taps.push([2048 + p - n * m, h[n]]);
      }
      expect(taps.length).toBeGreaterThan(5);
      // The designed kernel: symmetric (a linear-phase low-pass) with unit gain at DC.
      const byDist = new Map(taps);
      for (const [d, v] of taps) expect(byDist.get(-d)).toBe(v);
      expect(taps.reduce((sum, [, v]) => sum + v, 0)).toBeCloseTo(1, 2);
      const x = synthMusic(4, 1, rate, 1);
      const y = Resampler.convert(x, rate, 11025, { band });
      let err = 0;
      for (let n = 100; n < y.length - 100; n++) {
        let want = 0;
        for (const [d, v] of taps) want += v * x[n * m + d];
        err = Math.max(err, Math.abs(y[n] - want));
      }
      expect(err).toBeLessThan(1e-6);
    }
  });

  it('refuses rates that are not positive and finite', () => {
    expect(() => new Resampler(0, 11025)).toThrow(RangeError);
    expect(() => new Resampler(44100, Number.NaN)).toThrow(RangeError);
  });
});

describe('landmark hashes', () => {
  it('packs and unpacks anchor frequency, frequency difference and time difference', () => {
    for (const [f1, df, dt] of [[0, -60, 1], [348, 60, 48], [100, 0, 17]]) {
      expect(unpackHash(packHash(f1, df, dt))).toEqual({ f1, df, dt });
    }
  });

  it('rejects a configuration whose hop is larger than its frame', () => {
    expect(() => validateConfig({ ...FINGERPRINT_PRESETS.default, hop: 2048 })).toThrow(/hop size 2048 is larger than frame size 1024/);
    expect(() => new PeakPicker(kiss, { ...FINGERPRINT_PRESETS.default, maxDt: 64 })).toThrow(/maxDt/);
  });

  it('finds no landmarks in digital silence', () => {
    expect(fingerprintSignal(kiss, FINGERPRINT_PRESETS.default, new Float32Array(RATE * 5), RATE).hashes.length).toBe(0);
  });

  it('produces landmarks at a steady density on music', () => {
    expect(catalog.hashesPerSecond).toBeGreaterThan(30);
    expect(catalog.hashesPerSecond).toBeLessThan(400);
  });

  it('finds the same hashes after a 20 dB gain change', () => {
    const x = catalog.tracks[0].subarray(0, RATE * 10);
    const a = fingerprintSignal(kiss, FINGERPRINT_PRESETS.default, x, RATE);
    const b = fingerprintSignal(kiss, FINGERPRINT_PRESETS.default, gain(x, -20), RATE);
    const set = new Set(Array.from(a.hashes, (h, i) => h * 4096 + a.times[i]));
    const shared = Array.from(b.hashes, (h, i) => h * 4096 + b.times[i]).filter((k) => set.has(k)).length;
    expect(shared / a.hashes.length).toBeGreaterThan(0.95);
  });
});

describe('identification of excerpts', () => {
  const cases: Array<[string, (x: Float32Array) => Float32Array]> = [
    ['a clean excerpt', (x) => x],
    ['an excerpt with white noise at 5 dB SNR', (x) => addNoise(x, 5, 11)],
    ['an excerpt with white noise at 0 dB SNR', (x) => addNoise(x, 0, 12)],
    ['an excerpt 20 dB quieter', (x) => gain(x, -20)],
    ['a telephone-band excerpt (300–3400 Hz)', (x) => telephone(x, RATE)],
    ['an excerpt played 3% fast', (x) => changeSpeed(x, RATE, 1.03)],
    ['an excerpt played 3% slow', (x) => changeSpeed(x, RATE, 0.97)],
  ];
  for (const [name, degrade] of cases) {
    it(`identifies the right track and offset from ${name}`, async () => {
      for (const t of [2, 5]) {
        const start = 7.5 + t;
        const { matches } = await streamQuery(kiss, catalog.index, degrade(excerpt(catalog.tracks[t], start, 10)));
        expect(matches.length).toBeGreaterThanOrEqual(1);
        expect(matches[0].track).toBe(t + 1);
        expect(Math.abs(matches[0].offsetS - start)).toBeLessThan(0.06);
        expect(matches[0].confidence).toBeGreaterThan(0);
        expect(matches[0].audioS).toBeLessThanOrEqual(6);
      }
    });
  }

  it('reports the speed of an excerpt played 3% fast', async () => {
    const { matches } = await streamQuery(kiss, catalog.index, changeSpeed(excerpt(catalog.tracks[1], 12, 8), RATE, 1.03));
    expect(matches[0].track).toBe(2);
    expect(matches[0].speed).toBeCloseTo(1.03, 3);
  });

  it('identifies a clean excerpt within two seconds of audio', async () => {
    const { matches } = await streamQuery(kiss, catalog.index, excerpt(catalog.tracks[3], 20, 10));
    expect(matches[0].audioS).toBeLessThanOrEqual(2);
  });

  it('identifies an excerpt at 44.1 kHz against a catalog built at 22.05 kHz', async () => {
    const q = Resampler.convert(excerpt(catalog.tracks[4], 5, 8), RATE, 44100);
    const { matches } = await streamQuery(kiss, catalog.index, q, 44100);
    expect(matches[0].track).toBe(5);
    expect(Math.abs(matches[0].offsetS - 5)).toBeLessThan(0.06);
  });

  it.runIf(hasFfmpeg())('identifies an excerpt coded as 32 kbit/s MP3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fp-mp3-'));
    writeFileSync(join(dir, 'in.wav'), encodeWav(excerpt(catalog.tracks[6], 9, 10), RATE));
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', join(dir, 'in.wav'), '-b:a', '32k', join(dir, 'q.mp3')]);
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', join(dir, 'q.mp3'), '-ar', String(RATE), '-ac', '1', join(dir, 'q.wav')]);
    const q = decodeWav(readFileSync(join(dir, 'q.wav'))).samples;
    const { matches } = await streamQuery(kiss, catalog.index, q);
    expect(matches[0].track).toBe(7);
    // MP3 encoders add a short delay at the start (~50 ms at most).
    expect(Math.abs(matches[0].offsetS - 9)).toBeLessThan(0.1);
  });

  it('reports a second match when the stream changes track', async () => {
    const a = excerpt(catalog.tracks[0], 10, 14);
    const b = excerpt(catalog.tracks[7], 3, 20);
    const q = new Float32Array(a.length + b.length);
    q.set(a);
    q.set(b, a.length);
    const { matches } = await streamQuery(kiss, catalog.index, q);
    expect(matches.map((m) => m.track)).toEqual([1, 8]);
    // The second track starts 14 s into the stream, 3 s into track 8: the stream's origin maps to −11 s.
    expect(Math.abs(matches[1].offsetS - (3 - 14))).toBeLessThan(0.06);
  });
});

describe('speed search after a match', () => {
  it('pairs only the matched speed once a track is decided, and all of them again when the stream moves on', async () => {
    const m = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, MATCH_PRESETS.default, RATE, (h, cap) => catalog.index.lookup(h, cap));
    const step = Math.round(0.1 * RATE);
    const a = excerpt(catalog.tracks[2], 5, 14);
    // A change to another track played 3% fast: the new speed must still be found.
    const b = changeSpeed(excerpt(catalog.tracks[5], 4, 21), RATE, 1.03);
    const q = new Float32Array(a.length + b.length);
    q.set(a);
    q.set(b, a.length);
    const matches: LiveMatch[] = [];
    const active: number[] = [];
    // Whether a decision held, at each step of the second track before its match.
    const decidedInB: boolean[] = [];
    // How long the track has been unknown (unknownForS), while nothing was decided: before the first match, and in the lapse.
    const unknownBefore: number[] = [];
    const unknownInLapse: number[] = [];
    try {
      for (let o = 0; o < q.length; o += step) {
        const r = await m.push(q.subarray(o, Math.min(q.length, o + step)));
        if (r.match) matches.push(r.match);
        if (o + step >= a.length && o < a.length) active.push(m.fingerprinter.activeSpeeds);
        if (o >= a.length && matches.length === 1) decidedInB.push(m.decided);
        if (m.decided) expect(m.unknownForS).toBe(0);
        else if (matches.length === 0) unknownBefore.push(m.unknownForS - m.audioS);
        else if (matches.length === 1) unknownInLapse.push(m.unknownForS);
      }
    } finally {
      m.dispose();
    }
    expect(active).toEqual([1]);
    // The first track's decision holds into the second, lapses, and the new one holds.
    expect(decidedInB[0]).toBe(true);
    expect(decidedInB).toContain(false);
    expect(m.decided).toBe(true);
    // Unknown since the stream began until the first match; in the lapse, since the first track's last decision, not since the start.
    expect(unknownBefore.length).toBeGreaterThan(0);
    for (const d of unknownBefore) expect(Math.abs(d)).toBeLessThan(1e-9);
    expect(unknownInLapse.length).toBeGreaterThan(0);
    expect(Math.min(...unknownInLapse)).toBeGreaterThan(0);
    expect(Math.max(...unknownInLapse)).toBeLessThan(8);
    expect(matches.map((x) => x.track)).toEqual([3, 6]);
    expect(matches[1].speed).toBe(1.03);
  });

  it('searches every speed in full until a decision, however long nothing was known, and finds a track played off speed as soon as a fresh stream would', async () => {
    const cfg = MATCH_PRESETS.default;
    const step = Math.round(0.1 * RATE);
    for (const [t, speed, seed] of [
      [5, 1.03, 904],
      [2, 0.97, 905],
      [0, 1.02, 907],
    ] as const) {
      const other = synthMusic(seed, 20, RATE, 3);
      const track = changeSpeed(excerpt(catalog.tracks[t], 4, 16), RATE, speed);
      const fresh = await streamQuery(kiss, catalog.index, track);
      const q = new Float32Array(other.length + track.length);
      q.set(other);
      q.set(track, other.length);
      const m = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, cfg, RATE, (h, cap) => catalog.index.lookup(h, cap));
      // Every hypothesis at the full fan-out throughout: what the matcher pairs must be what this one pairs.
      const full = new StreamFingerprinter(kiss, FINGERPRINT_PRESETS.default, RATE, { speeds: cfg.speeds });
      const differs: number[] = [];
      let match: LiveMatch | null = null;
      try {
        for (let o = 0; o < q.length && !match; o += step) {
          const chunk = q.subarray(o, o + step);
          const r = await m.push(chunk);
          match = r.match;
          if (r.landmarks !== full.push(chunk).count) differs.push(m.audioS);
        }
        expect(differs).toEqual([]);
        expect(match).toMatchObject({ track: t + 1, speed: cfg.speeds.includes(speed) ? speed : expect.any(Number) });
        // Between hypotheses (1.02) the nearest one maps the stream's start with a drift of the speed difference per second since the track began.
        const drift = Math.abs(speed - match!.speed) * (match!.audioS - 20);
        expect(Math.abs(match!.offsetS - (4 - 20 * match!.speed))).toBeLessThan(0.06 + drift);
        expect(match!.audioS - 20).toBeLessThanOrEqual(fresh.matches[0].audioS + 0.5);
        // Decided: the one hypothesis.
        expect(m.fingerprinter.activeSpeeds).toBe(1);
      } finally {
        m.dispose();
        full.dispose();
      }
    }
  });

  it('decides a long chunk step by step: the same match, audio_s and votes as small frames, with one lookup', async () => {
    const q = addNoise(excerpt(catalog.tracks[4], 7, 6), 10, 3);
    let lookups = 0;
    const lookup = (h: Uint32Array, cap: number) => {
      lookups++;
      return catalog.index.lookup(h, cap);
    };
    const m = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, MATCH_PRESETS.default, RATE, lookup);
    let whole;
    try {
      whole = await m.push(q);
    } finally {
      m.dispose();
    }
    expect(lookups).toBe(1);
    expect(m.lookupRounds).toBe(1);
    // The same audio in 0.1 s frames: after the decision those pair the decided speed alone, and the long chunk's later steps vote as they do.
    const s = new LiveMatcher(kiss, FINGERPRINT_PRESETS.default, MATCH_PRESETS.default, RATE, lookup);
    const small: LiveMatch[] = [];
    try {
      for (let o = 0; o < q.length; o += Math.round(0.1 * RATE)) {
        const r = await s.push(q.subarray(o, o + Math.round(0.1 * RATE)));
        if (r.match) small.push(r.match);
      }
    } finally {
      s.dispose();
    }
    expect(small[0].audioS).toBeLessThan(5);
    expect(whole.match).toEqual(small[0]);
    expect(m.voter.totalVotes).toBe(s.voter.totalVotes);
    expect(m.landmarks).toBeGreaterThan(s.landmarks);
  });

  it('looks up hashes given in any order, each once', () => {
    const index = new MemoryIndex();
    index.add(1, [5, 9, 5], [10, 11, 12]);
    index.add(2, [9], [3]);
    const rows = index.lookup([9, 5, 9, 5]);
    const got = Array.from(rows.hashes, (h, i) => `${h}:${rows.tracks[i]}@${rows.times[i]}`).sort();
    expect(got).toEqual(['5:1@10', '5:1@12', '9:1@11', '9:2@3']);
    expect(index.lookup([5, 9], 1).hashes).toEqual(new Uint32Array([5, 5]).subarray(0, 0));
  });

  it('answers hashes beyond the directly addressed range, and edits made after a lookup', () => {
    const index = new MemoryIndex();
    index.add(1, [2 ** 31 + 7, 3, 2 ** 31 + 7], [10, 11, 12]);
    const got = (hs: number[]) => {
      const rows = index.lookup(hs);
      return Array.from(rows.hashes, (h, i) => `${h}:${rows.tracks[i]}@${rows.times[i]}`);
    };
    expect(got([3, 2 ** 31 + 7, 2 ** 31 + 8])).toEqual(['3:1@11', `${2 ** 31 + 7}:1@10`, `${2 ** 31 + 7}:1@12`]);
    index.add(2, [3], [4]);
    index.remove(1);
    expect(got([3, 2 ** 31 + 7])).toEqual(['3:2@4']);
  });

  it('packs rows grouped by hash directly, with or without the direct table, and stays editable', () => {
    const hashes = [3, 3, 3, 9, 700_000, 700_000, 2 ** 31 + 7];
    const tracks = [1, 2, 2, 1, 4, 5, 1];
    const times = [10, 11, 12, 13, 14, 15, 16];
    const added = new MemoryIndex();
    hashes.forEach((h, i) => added.add(tracks[i], [h], [times[i]]));
    const query = [700_000, 3, 4, 9, 2 ** 31 + 7, 3, 2 ** 32 - 1, 2 ** 31 + 8];
    for (const directTable of [true, false]) {
      const packed = MemoryIndex.fromSortedRows({ hashes, tracks, times }, { directTable });
      expect(packed.size).toBe(7);
      for (const cap of [Infinity, 2, 1]) expect(rowsOf(packed.lookup(query, cap))).toEqual(rowsOf(added.lookup(query, cap)));
      packed.remove(2);
      packed.add(6, [4], [1]);
      expect(rowsOf(packed.lookup(query))).toEqual(['2147483655:1@16', '3:1@10', '4:6@1', '700000:4@14', '700000:5@15', '9:1@13']);
    }
    expect(() => MemoryIndex.fromSortedRows({ hashes: [5, 3], tracks: [1, 1], times: [0, 0] })).toThrow(RangeError);
  });

  it('merges a track into the packed rows once per (hash, track, time), as the lookups of one built afresh', () => {
    const index = MemoryIndex.fromSortedRows({ hashes: [3, 9, 9], tracks: [1, 1, 2], times: [5, 6, 7] }, { directTable: false });
    const fresh = new MemoryIndex();
    fresh.add(1, [3, 9], [5, 6]);
    fresh.add(2, [9], [7]);
    // Unsorted, with a repeat inside the call and hashes before, between and after the old ones.
    expect(index.insertUnique(4, [12, 1, 9, 1, 12, 9], [2, 8, 3, 8, 1, 3])).toBe(4);
    fresh.add(4, [12, 1, 9, 12], [2, 8, 3, 1]);
    // Rows already there add nothing; a track ingested again adds only what is new.
    expect(index.insertUnique(4, [9, 1], [3, 8])).toBe(0);
    expect(index.insertUnique(1, [3, 3], [5, 6])).toBe(1);
    fresh.add(1, [3], [6]);
    expect(index.size).toBe(fresh.size);
    const query = [1, 2, 3, 9, 12];
    for (const cap of [Infinity, 2]) expect(rowsOf(index.lookup(query, cap))).toEqual(rowsOf(fresh.lookup(query, cap)));
    index.remove(4);
    fresh.remove(4);
    expect(rowsOf(index.lookup(query))).toEqual(rowsOf(fresh.lookup(query)));
    expect(index.size).toBe(4);
  });
});

describe('no match without the catalog audio', () => {
  it('reports nothing for digital silence', async () => {
    expect((await streamQuery(kiss, catalog.index, new Float32Array(RATE * 10))).matches).toEqual([]);
  });

  it('reports nothing for white noise', async () => {
    expect((await streamQuery(kiss, catalog.index, noise(10, RATE, 0.2, 5))).matches).toEqual([]);
  });

  it('reports nothing for music that is not in the catalog', async () => {
    for (const seed of [900, 901, 902, 903]) {
      expect((await streamQuery(kiss, catalog.index, synthMusic(seed, 10, RATE, 3))).matches).toEqual([]);
    }
  });

  it('stops matching a track once it is removed from the index', async () => {
    const index = new MemoryIndex();
    const x = catalog.tracks[2];
    const fp = fingerprintSignal(kiss, FINGERPRINT_PRESETS.default, x, RATE);
    index.add(3, fp.hashes, fp.times);
    expect((await streamQuery(kiss, index, excerpt(x, 5, 6))).matches[0]?.track).toBe(3);
    index.remove(3);
    expect(index.size).toBe(0);
    expect((await streamQuery(kiss, index, excerpt(x, 5, 6))).matches).toEqual([]);
  });
});

describe('OffsetVoter', () => {
  it('forgets votes older than its window', () => {
    // Every match votes here (minAnchorMatches 1): these tests pin the window and the scores; the anchor gate has its own below.
    const v = new OffsetVoter({ ...MATCH_PRESETS.default, windowS: 5, minAnchorMatches: 1 });
    const batch = { count: 20, hashes: new Uint32Array(20).map((_, i) => i + 1), times: new Int32Array(20).map((_, i) => i), speeds: new Uint8Array(20) };
    const rows = { hashes: Array.from(batch.hashes), tracks: new Array(20).fill(9), times: Array.from(batch.times, (t) => t + 100) };
    v.vote(batch, rows, 1);
    expect(v.decide()).toMatchObject({ track: 9, offsetFrames: 100, votes: 20 });
    v.expire(7);
    expect(v.leader()).toBeNull();
  });

  it('casts every vote of a batch larger than its key buffer, grouped or scattered rows alike', () => {
    // 3,000 votes in one batch: one hash with 2,990 rows on chance alignments, and 10 rows agreeing on track 4 at offset 250.
    const rows = { hashes: [] as number[], tracks: [] as number[], times: [] as number[] };
    for (let r = 0; r < 2990; r++) {
      rows.hashes.push(1);
      rows.tracks.push(1 + (r % 7));
      rows.times.push(1000 + 37 * r);
    }
    const batch = { count: 11, hashes: Uint32Array.from({ length: 11 }, (_, i) => (i === 0 ? 1 : i + 1)), times: Int32Array.from({ length: 11 }, (_, i) => i), speeds: new Uint8Array(11) };
    for (let i = 1; i < 11; i++) {
      rows.hashes.push(i + 1);
      rows.tracks.push(4);
      rows.times.push(250 + i);
    }
    const cfg = { ...MATCH_PRESETS.default, minVotes: 10, minAnchorMatches: 1 };
    const grouped = new OffsetVoter(cfg);
    expect(grouped.vote(batch, rows, 1)).toBe(3000);
    // The same rows with the big run split in two: the voter must gather them by hash itself.
    const order = [...rows.hashes.keys()].sort((a, b) => (a % 2) - (b % 2) || a - b);
    const scattered = new OffsetVoter(cfg);
    expect(scattered.vote(batch, { hashes: order.map((r) => rows.hashes[r]), tracks: order.map((r) => rows.tracks[r]), times: order.map((r) => rows.times[r]) }, 1)).toBe(3000);
    for (const v of [grouped, scattered]) {
      expect(v.totalVotes).toBe(3000);
      expect(v.decide()).toMatchObject({ track: 4, offsetFrames: 250, votes: 10 });
    }
  });
});

/**
 * The decision rule computed the slow, obvious way from a list of live votes:
 * every alignment's score is the sum of the exact counts within the offset
 * tolerance, every alignment is considered, scores below the hot threshold
 * count as just below it.
 */
function referenceLeader(votes: Array<{ track: number; speed: number; offset: number }>, cfg: typeof MATCH_PRESETS.default) {
  const hotAt = Math.max(2, Math.min(Math.floor(cfg.minVotes / cfg.minRatio), Math.floor(cfg.minVotes / cfg.minOffsetRatio), Math.floor(cfg.ambiguousVotes / cfg.ambiguousRatio)) + 1);
  const exact = new Map<string, number>();
  const id = (t: number, s: number, o: number) => `${t}/${s}/${o}`;
  for (const v of votes) exact.set(id(v.track, v.speed, v.offset), (exact.get(id(v.track, v.speed, v.offset)) ?? 0) + 1);
  const scored: Array<{ track: number; speed: number; offset: number; score: number; exact: number }> = [];
  const seen = new Set<string>();
  for (const v of votes) {
    for (let d = -cfg.offsetTolerance; d <= cfg.offsetTolerance; d++) {
      const o = v.offset + d;
      if (seen.has(id(v.track, v.speed, o))) continue;
      seen.add(id(v.track, v.speed, o));
      let score = 0;
      for (let e = -cfg.offsetTolerance; e <= cfg.offsetTolerance; e++) score += exact.get(id(v.track, v.speed, o + e)) ?? 0;
      if (score >= hotAt) scored.push({ track: v.track, speed: v.speed, offset: o, score, exact: exact.get(id(v.track, v.speed, o)) ?? 0 });
    }
  }
  if (scored.length === 0) return null;
  const order = (a: (typeof scored)[0]) => [a.score, a.exact, -a.track, -a.speed, -a.offset];
  const best = scored.reduce((b, c) => {
    const x = order(c);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] > y[i] ? c : b;
    return b;
  });
  let runnerUp = hotAt - 1;
  let sameTrack = hotAt - 1;
  for (const c of scored) {
    if (c.track !== best.track) runnerUp = Math.max(runnerUp, c.score);
    else if (Math.abs(c.offset - best.offset) > cfg.distinctOffsetFrames) sameTrack = Math.max(sameTrack, c.score);
  }
  return { track: best.track, speedIndex: best.speed, offsetFrames: best.offset, votes: best.score, runnerUp, sameTrackRunnerUp: sameTrack };
}

describe('OffsetVoter decisions', () => {
  it('scores alignments as the sum of the votes within the offset tolerance, as a brute-force count does', () => {
    const cfg = { ...MATCH_PRESETS.default, windowS: 3, minAnchorMatches: 1 };
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const v = new OffsetVoter(cfg);
      // A FIFO this short also drops votes for room, not only for age.
      const short = new OffsetVoter(cfg, 100);
      const live: Array<{ track: number; speed: number; offset: number; at: number }> = [];
      // A few planted alignments whose votes jitter by up to two frames, in a crowd of chance votes on nearby offsets.
      const planted = Array.from({ length: 3 }, () => ({ track: 1 + Math.floor(rand() * 3), speed: Math.floor(rand() * 5), offset: 100 + Math.floor(rand() * 60) }));
      for (let step = 1; step <= 60; step++) {
        const audioS = step * 0.1;
        const n = 1 + Math.floor(rand() * 30);
        const batch = { count: n, hashes: new Uint32Array(n), times: new Int32Array(n), speeds: new Uint8Array(n) };
        const rows = { hashes: [] as number[], tracks: [] as number[], times: [] as number[] };
        for (let i = 0; i < n; i++) {
          const p = planted[Math.floor(rand() * planted.length)];
          const chance = rand() < 0.5;
          const track = chance ? 1 + Math.floor(rand() * 3) : p.track;
          const speed = chance ? Math.floor(rand() * 5) : p.speed;
          const offset = chance ? 90 + Math.floor(rand() * 90) : p.offset + Math.floor(rand() * 5) - 2;
          const qt = Math.floor(rand() * 50);
          batch.hashes[i] = i + 1;
          batch.times[i] = qt;
          batch.speeds[i] = speed;
          rows.hashes.push(i + 1);
          rows.tracks.push(track);
          rows.times.push(offset + qt);
          live.push({ track, speed, offset, at: audioS });
        }
        v.vote(batch, rows, audioS);
        short.vote(batch, rows, audioS);
        const current = live.filter((x) => x.at >= audioS - cfg.windowS);
        const got = v.leader();
        const want = referenceLeader(current, cfg);
        if (want === null) expect(got).toBeNull();
        else expect(got).toMatchObject(want);
        const wantShort = referenceLeader(current.slice(-100), cfg);
        if (wantShort === null) expect(short.leader()).toBeNull();
        else expect(short.leader()).toMatchObject(wantShort);
        // A lone chance vote far from every alignment changes no hot score: the leader
        // found before it (kept, not searched again) must still be the right one.
        if (step % 3 === 0) {
          const far = { track: 9, speed: 0, offset: 10_000 + 50 * step, at: audioS };
          const lone = { count: 1, hashes: Uint32Array.of(1), times: Int32Array.of(0), speeds: Uint8Array.of(0) };
          v.vote(lone, { hashes: [1], tracks: [far.track], times: [far.offset] }, audioS);
          short.vote(lone, { hashes: [1], tracks: [far.track], times: [far.offset] }, audioS);
          live.push(far);
          const now = live.filter((x) => x.at >= audioS - cfg.windowS);
          for (const [voter, votes] of [[v, now], [short, now.slice(-100)]] as const) {
            const after = referenceLeader([...votes], cfg);
            if (after === null) expect(voter.leader()).toBeNull();
            else expect(voter.leader()).toMatchObject(after);
          }
        }
      }
    }
  });
});

/** One step of matches for OffsetVoter.vote: landmark i has hash i + 1, anchor frame `qt`, and one catalog row. */
function stepOf(matches: Array<{ qt: number; f1: number; track: number; offset: number }>) {
  const n = matches.length;
  const batch = { count: n, hashes: new Uint32Array(n), times: new Int32Array(n), speeds: new Uint8Array(n) };
  const rows = { hashes: [] as number[], tracks: [] as number[], times: [] as number[] };
  matches.forEach((m, i) => {
    // Distinct hashes whose anchor frequency (the top bits) is f1.
    batch.hashes[i] = packHash(m.f1, (i % 100) - 50, 1 + (i % 60));
    batch.times[i] = m.qt;
    rows.hashes.push(batch.hashes[i]);
    rows.tracks.push(m.track);
    rows.times.push(m.offset + m.qt);
  });
  // Rows grouped by hash, as every index returns them.
  const order = [...rows.hashes.keys()].sort((a, b) => rows.hashes[a] - rows.hashes[b]);
  return { batch, rows: { hashes: order.map((r) => rows.hashes[r]), tracks: order.map((r) => rows.tracks[r]), times: order.map((r) => rows.times[r]) } };
}

describe('OffsetVoter anchor groups (minAnchorMatches 2)', () => {
  const cfg = { ...MATCH_PRESETS.default, minAnchorMatches: 2 };

  it('keeps a lone match at a fresh alignment out, and lets an anchor\'s second match there vote with its first', () => {
    const v = new OffsetVoter(cfg);
    // Two anchors, one match each at the same alignment: no group.
    let s = stepOf([
      { qt: 10, f1: 40, track: 3, offset: 500 },
      { qt: 11, f1: 40, track: 3, offset: 500 },
    ]);
    expect(v.vote(s.batch, s.rows, 0.1)).toBe(0);
    // The first anchor's second match, one step later: both vote.
    s = stepOf([{ qt: 10, f1: 40, track: 3, offset: 500 }]);
    expect(v.vote(s.batch, s.rows, 0.2)).toBe(2);
    // The alignment now holds votes: a lone match within the offset tolerance votes at once, one beyond it does not.
    s = stepOf([
      { qt: 30, f1: 90, track: 3, offset: 501 },
      { qt: 31, f1: 90, track: 3, offset: 503 },
      { qt: 31, f1: 90, track: 4, offset: 500 },
    ]);
    expect(v.vote(s.batch, s.rows, 0.4)).toBe(1);
    expect(v.totalVotes).toBe(3);
  });

  it('groups an anchor\'s matches of the same or the next step only', () => {
    const v = new OffsetVoter(cfg);
    const first = stepOf([{ qt: 5, f1: 7, track: 2, offset: 100 }]);
    expect(v.vote(first.batch, first.rows, 0.1)).toBe(0);
    const empty = stepOf([{ qt: 6, f1: 8, track: 9, offset: 9000 }]);
    expect(v.vote(empty.batch, empty.rows, 0.2)).toBe(0);
    // Two steps later the first match is forgotten: this one is alone again.
    expect(v.vote(first.batch, first.rows, 0.3)).toBe(0);
    // Same step: a group of two, then a third match casts one more.
    const pair = stepOf([
      { qt: 50, f1: 7, track: 2, offset: 300 },
      { qt: 50, f1: 7, track: 2, offset: 300 },
      { qt: 50, f1: 7, track: 2, offset: 300 },
    ]);
    expect(v.vote(pair.batch, pair.rows, 0.4)).toBe(3);
  });

  it('casts the votes a brute-force reading of the rule casts, and decides as a count of them does', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rand = rng(1000 + seed);
      const c = { ...cfg, windowS: 2 };
      const v = new OffsetVoter(c);
      const live: Array<{ track: number; speed: number; offset: number; at: number }> = [];
      // Groups by anchor and alignment: the step each was first seen in, its matches, the votes it cast.
      const groups = new Map<string, { step: number; matches: number; cast: number }>();
      for (let step = 1; step <= 50; step++) {
        const audioS = step * 0.1;
        const matches = Array.from({ length: 1 + Math.floor(rand() * 25) }, () => ({
          qt: step * 4 + Math.floor(rand() * 6),
          f1: Math.floor(rand() * 3),
          track: 1 + Math.floor(rand() * 2),
          offset: 100 + Math.floor(rand() * 12),
        }));
        const { batch, rows } = stepOf(matches);
        let want = 0;
        const current = () => live.filter((x) => x.at >= audioS - c.windowS);
        // The voter walks landmarks in batch order and each one's rows: here one row each.
        for (const m of matches) {
          const id = `${m.qt}/${m.f1}/${m.track}/${m.offset}`;
          let g = groups.get(id);
          if (!g || g.step < step - 1) groups.set(id, (g = { step, matches: 0, cast: 0 }));
          g.matches++;
          let n = 0;
          if (g.matches >= 2) n = g.matches - g.cast;
          else if (current().some((x) => x.track === m.track && Math.abs(x.offset - m.offset) <= c.offsetTolerance)) n = 1;
          g.cast += n;
          for (let k = 0; k < n; k++) live.push({ track: m.track, speed: 0, offset: m.offset, at: audioS });
          want += n;
        }
        expect(v.vote(batch, rows, audioS)).toBe(want);
        const ref = referenceLeader(current(), c);
        if (ref === null) expect(v.leader()).toBeNull();
        else expect(v.leader()).toMatchObject(ref);
      }
    }
  });
});

describe('AlignTable', () => {
  it('agrees with two Maps (votes, near) through random additions, removals and growth', () => {
    const t = new AlignTable(16);
    const ref = [new Map<number, number>(), new Map<number, number>()];
    const rand = rng(43);
    for (let step = 0; step < 50_000; step++) {
      const key = 2 ** 40 + Math.floor(rand() * 3000) * 7919;
      const which = rand() < 0.7 ? 0 : 1;
      const cur = ref[which].get(key) ?? 0;
      const delta = cur === 0 || rand() < 0.55 ? 1 : -1;
      const got = which === 0 ? t.addVotes(key, delta) : t.addNear(key, delta);
      if (cur + delta <= 0) ref[which].delete(key);
      else ref[which].set(key, cur + delta);
      expect(got).toBe(Math.max(0, cur + delta));
      if (which === 0) expect(t.lastNear).toBe(ref[1].get(key) ?? 0);
    }
    expect(t.size).toBe(new Set([...ref[0].keys(), ...ref[1].keys()]).size);
    for (const [key, count] of ref[0]) expect(t.votes(key)).toBe(count);
    for (const [key, count] of ref[1]) expect(t.near(key)).toBe(count);
    expect(t.votes(12345)).toBe(0);
    expect(t.addVotes(12345, -1)).toBe(0);
  });
});

describe('AlignTable as a plain count table (the hot scores)', () => {
  it('agrees with a Map through random additions, removals and growth, and a scan by slot finds every key with its count', () => {
    const t = new AlignTable(16);
    const ref = new Map<number, number>();
    const rand = rng(42);
    for (let step = 0; step < 50_000; step++) {
      // Keys near 2^40 like real vote keys, in a small range so they collide and come back.
      const key = 2 ** 40 + Math.floor(rand() * 3000) * 7919;
      const cur = ref.get(key) ?? 0;
      const delta = cur === 0 || rand() < 0.55 ? 1 : -1;
      const got = t.addVotes(key, delta);
      if (cur + delta <= 0) ref.delete(key);
      else ref.set(key, cur + delta);
      expect(got).toBe(Math.max(0, cur + delta));
    }
    expect(t.size).toBe(ref.size);
    for (const [key, count] of ref) expect(t.votes(key)).toBe(count);
    const scanned = new Map<number, number>();
    for (let slot = 0; slot < t.capacity; slot++) if (t.votesAt(slot) > 0) scanned.set(t.keyAt(slot), t.votesAt(slot));
    expect(scanned).toEqual(ref);
    expect(t.votes(12345)).toBe(0);
    expect(t.addVotes(12345, -1)).toBe(0);
    expect(t.size).toBe(ref.size);
  });
});
