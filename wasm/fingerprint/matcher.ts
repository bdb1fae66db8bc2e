// Matching by aligned offsets (Wang 2003, section 2.3): every query landmark
// whose hash is in the catalog votes for (track, db_time − query_time). A
// true match piles votes on one offset; chance collisions spread over all
// offsets of all tracks. The voter keeps a sliding window of votes, so a
// stream that changes track is re-identified once the old votes age out.
import type { MatchConfig } from './config.ts';
import type { LandmarkBatch } from './stream.ts';

/** Catalog rows for a set of hashes: parallel arrays, any order. */
export interface IndexRows {
  hashes: ArrayLike<number>;
  tracks: ArrayLike<number>;
  times: ArrayLike<number>;
}

export interface Candidate {
  track: number;
  /** Index into the speed hypotheses. */
  speedIndex: number;
  /** db_time − query_time in frames: where the stream's first sample lies in the track. */
  offsetFrames: number;
  /** Aligned votes (within the offset tolerance) for this track, speed and offset. */
  votes: number;
  /** The best score of any other track. */
  runnerUp: number;
  /** 0..1: how clearly the winner stands above the runner-up, saturating with evidence. */
  confidence: number;
}

const OFFSET_SPAN = 2 ** 24;
const OFFSET_BIAS = 2 ** 23;
const SPEED_SLOTS = 256;

/** Vote keys pack (track, speed, offset) so that offsets ±1 are keys ±1. */
function voteKey(track: number, speed: number, offset: number): number {
  return (track * SPEED_SLOTS + speed) * OFFSET_SPAN + (offset + OFFSET_BIAS);
}

export class OffsetVoter {
  readonly cfg: MatchConfig;
  private readonly counts = new Map<number, number>();
  /** Keys whose count is 2 or more: the only ones that can win. */
  private readonly hot = new Set<number>();
  /** FIFO of votes (key, audio time) for the sliding window. */
  private keys: Float64Array;
  private stamps: Float64Array;
  private head = 0;
  private size = 0;
  totalVotes = 0;

  constructor(cfg: MatchConfig, capacity = 1 << 17) {
    this.cfg = cfg;
    this.keys = new Float64Array(capacity);
    this.stamps = new Float64Array(capacity);
  }

  /** Adds the votes of one landmark batch; `rows` are the catalog entries of its hashes. */
  vote(batch: LandmarkBatch, rows: IndexRows, audioS: number): number {
    this.expire(audioS);
    if (batch.count === 0 || rows.hashes.length === 0) return 0;
    const byHash = new Map<number, number[]>();
    for (let r = 0; r < rows.hashes.length; r++) {
      const h = rows.hashes[r];
      let list = byHash.get(h);
      if (!list) byHash.set(h, (list = []));
      list.push(r);
    }
    let added = 0;
    for (let i = 0; i < batch.count; i++) {
      const list = byHash.get(batch.hashes[i]);
      if (!list) continue;
      const qt = batch.times[i];
      const sp = batch.speeds[i];
      for (const r of list) {
        this.add(voteKey(rows.tracks[r], sp, rows.times[r] - qt), audioS);
        added++;
      }
    }
    this.totalVotes += added;
    return added;
  }

  private add(key: number, stamp: number): void {
    if (this.size === this.keys.length) this.evictOldest();
    const slot = (this.head + this.size) % this.keys.length;
    this.keys[slot] = key;
    this.stamps[slot] = stamp;
    this.size++;
    const c = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, c);
    if (c === 2) this.hot.add(key);
  }

  private evictOldest(): void {
    const key = this.keys[this.head];
    this.head = (this.head + 1) % this.keys.length;
    this.size--;
    const c = (this.counts.get(key) ?? 1) - 1;
    if (c <= 0) this.counts.delete(key);
    else this.counts.set(key, c);
    if (c === 1) this.hot.delete(key);
  }

  /** Drops votes cast more than `windowS` seconds of audio ago. */
  expire(audioS: number): void {
    const limit = audioS - this.cfg.windowS;
    while (this.size > 0 && this.stamps[this.head] < limit) this.evictOldest();
  }

  private score(key: number): number {
    let s = this.counts.get(key) ?? 0;
    for (let d = 1; d <= this.cfg.offsetTolerance; d++) s += (this.counts.get(key - d) ?? 0) + (this.counts.get(key + d) ?? 0);
    return s;
  }

  /** The leading candidate, or null when no track has a single aligned pair of votes. */
  leader(): Candidate | null {
    let bestKey = -1;
    let best = 0;
    let bestTrack = -1;
    // Best score per track, to find the best *other* track.
    const perTrack = new Map<number, number>();
    for (const key of this.hot) {
      const s = this.score(key);
      const track = Math.floor(key / (SPEED_SLOTS * OFFSET_SPAN));
      if (s > (perTrack.get(track) ?? 0)) perTrack.set(track, s);
      if (s > best || (s === best && key < bestKey)) {
        best = s;
        bestKey = key;
        bestTrack = track;
      }
    }
    if (bestKey < 0) return null;
    let runnerUp = 1; // a lone vote somewhere is the floor of chance agreement
    for (const [track, s] of perTrack) if (track !== bestTrack && s > runnerUp) runnerUp = s;
    const speedIndex = Math.floor(bestKey / OFFSET_SPAN) % SPEED_SLOTS;
    const offsetFrames = (bestKey % OFFSET_SPAN) - OFFSET_BIAS;
    const margin = best - this.cfg.minRatio * runnerUp;
    const confidence = margin <= 0 ? 0 : 1 - Math.exp(-margin / this.cfg.minVotes);
    return { track: bestTrack, speedIndex, offsetFrames, votes: best, runnerUp, confidence: Math.round(confidence * 1000) / 1000 };
  }

  /** The leader if the evidence is enough to report it, else null. */
  decide(): Candidate | null {
    const c = this.leader();
    if (!c) return null;
    if (c.votes < this.cfg.minVotes || c.votes < this.cfg.minRatio * c.runnerUp) return null;
    return c;
  }

  reset(): void {
    this.counts.clear();
    this.hot.clear();
    this.head = 0;
    this.size = 0;
    this.totalVotes = 0;
  }
}

/** A catalog held in memory: the reference the shards are tested against, and the benchmark's index. */
export class MemoryIndex {
  private readonly table = new Map<number, number[]>();
  private entries = 0;

  add(track: number, hashes: ArrayLike<number>, times: ArrayLike<number>): void {
    for (let i = 0; i < hashes.length; i++) {
      let list = this.table.get(hashes[i]);
      if (!list) this.table.set(hashes[i], (list = []));
      list.push(track, times[i]);
    }
    this.entries += hashes.length;
  }

  remove(track: number): void {
    for (const [h, list] of this.table) {
      const kept: number[] = [];
      for (let i = 0; i < list.length; i += 2) if (list[i] !== track) kept.push(list[i], list[i + 1]);
      this.entries -= (list.length - kept.length) / 2;
      if (kept.length) this.table.set(h, kept);
      else this.table.delete(h);
    }
  }

  get size(): number {
    return this.entries;
  }

  lookup(hashes: ArrayLike<number>): IndexRows {
    const out = { hashes: [] as number[], tracks: [] as number[], times: [] as number[] };
    const seen = new Set<number>();
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i];
      if (seen.has(h)) continue;
      seen.add(h);
      const list = this.table.get(h);
      if (!list) continue;
      for (let j = 0; j < list.length; j += 2) {
        out.hashes.push(h);
        out.tracks.push(list[j]);
        out.times.push(list[j + 1]);
      }
    }
    return out;
  }
}
