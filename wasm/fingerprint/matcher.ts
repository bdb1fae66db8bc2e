// Matching by aligned offsets (Wang 2003, section 2.3): a query landmark
// whose hash is in the catalog votes for (track, db_time − query_time). A
// true match piles votes on one offset; chance collisions spread over all
// offsets of all tracks. A lone match at a fresh alignment waits for a
// second hash of its anchor there (AnchorGroups): true alignments get their
// matches in such groups, chance ones seldom. The voter keeps a sliding
// window of votes, so a stream that changes track is re-identified once the
// old votes age out.
import type { MatchConfig } from './config.ts';
import type { LandmarkBatch } from './stream.ts';
import { AlignTable } from './align-table.ts';
import { AnchorGroups } from './anchor-groups.ts';
import { highWord, lowWord, mixWords } from './key-words.ts';

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
  /** The best score of another alignment of the same track. */
  sameTrackRunnerUp: number;
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

const COVER_BITS = 15;

function coverSlot(key: number): number {
  return mixWords(lowWord(key), highWord(key)) >>> (32 - COVER_BITS);
}

/** A query anchor: its frame and frequency (the hash's top bits), unique among the anchors alive at once. */
function anchorOf(frame: number, hash: number): number {
  return ((frame & 0x3fffff) << 9) | (hash >>> 13);
}

/** i mod n for 0 <= i < 2n: ring arithmetic without a division per vote. */
function wrap(i: number, n: number): number {
  return i >= n ? i - n : i;
}

/** The `count` entries of a ring starting at `head`, copied in order to the start of `into` (a larger ring). */
function unwrapRing<T extends Float64Array | Int32Array>(ring: T, head: number, count: number, into: T): T {
  for (let i = 0; i < count; i++) into[i] = ring[(head + i) % ring.length];
  return into;
}

export class OffsetVoter {
  readonly cfg: MatchConfig;
  /**
   * Votes exactly at each alignment key (one probe per vote; scores sum the
   * neighbours only where they can matter), and how many warm keys (at least
   * `warmAt` exact votes) lie within twice the tolerance of each key. A
   * score of hotAt sums 2·tol + 1 exact counts, so one of them is warm: a
   * vote whose key is not near a warm key cannot touch a hot score, and
   * costs no neighbour lookups. Both counts share a slot, so that test costs
   * no second probe.
   */
  // Past the anchor gate (see `match`), audio that never matches casts ~150
  // votes a second: ~2,000 keys in a 12 s window, where every match voting
  // made 20,000–80,000. Starts at 64 KB and grows when a stream needs more
  // (a match).
  private readonly exact = new AlignTable(1 << 12);
  private readonly groups: AnchorGroups;
  /**
   * By a hash of the key, how many voted keys lie within the offset
   * tolerance of it: 0 proves that no alignment near a key holds votes,
   * which is the answer for most chance matches (see `open`).
   */
  private readonly cover = new Uint16Array(1 << COVER_BITS);
  /**
   * Scores (votes within the offset tolerance) of the keys scoring `hotAt`
   * or more: the only ones a decision can depend on. A winner needs
   * minVotes, and anything below minVotes / minRatio can neither beat it
   * nor block it, so the long tail of chance votes is never scored. The
   * same table, its `votes` holding the score and `near` unused.
   */
  private readonly hot = new AlignTable(1 << 10);
  /** FIFO of vote keys for the sliding window; grows up to `capacity`, then the oldest vote makes room. */
  private keys: Float64Array;
  private readonly capacity: number;
  private head = 0;
  private size = 0;
  /**
   * The FIFO's audio times, run-length: votes come in batches that share
   * one time, so a ring of (time, votes) per batch replaces a time per vote.
   */
  private runStamps = new Float64Array(256);
  private runVotes = new Int32Array(256);
  private runHead = 0;
  private runCount = 0;
  totalVotes = 0;
  private scratchKeys = new Float64Array(1024);
  /** The last leader, and the hot table's edit count when it was found. */
  private leaderCache: Candidate | null = null;
  private leaderEdits = -1;
  private scratchScores = new Int32Array(1024);
  /** Where each hash's rows start in the current lookup; reused across lookups. */
  private readonly runs = new Map<number, number>();
  /** Exact counts from key − 2·tol to key + 2·tol, read around a vote. */
  private readonly around: Int32Array;

  private readonly hotAt: number;
  private readonly warmAt: number;

  constructor(cfg: MatchConfig, capacity = 1 << 17) {
    this.cfg = cfg;
    this.groups = new AnchorGroups();
    // Untracked scores are at most hotAt − 1; that bound times each rule's ratio stays within the votes the rule asks for.
    const untracked = Math.min(Math.floor(cfg.minVotes / cfg.minRatio), Math.floor(cfg.minVotes / cfg.minOffsetRatio), Math.floor(cfg.ambiguousVotes / cfg.ambiguousRatio));
    this.hotAt = Math.max(2, untracked + 1);
    this.warmAt = Math.ceil(this.hotAt / (2 * cfg.offsetTolerance + 1));
    this.around = new Int32Array(4 * cfg.offsetTolerance + 1);
    this.capacity = capacity;
    // Past the gate a listener's stream casts a few hundred votes a second: room for ~12 s of that, grown as needed.
    this.keys = new Float64Array(Math.min(capacity, 1 << 12));
  }

  /** Adds the votes of one landmark batch; `rows` are the catalog entries of its hashes. */
  vote(batch: LandmarkBatch, rows: IndexRows, audioS: number): number {
    return this.voteIndexed(batch, rows, this.indexRows(rows), audioS);
  }

  /**
   * Where each hash's rows start, when every hash's rows form one contiguous
   * run (every index here groups them by hash); null when they are scattered.
   * Computed once for a lookup that serves several batches; the map is the
   * voter's own, valid until the next call.
   */
  indexRows(rows: IndexRows): Map<number, number> | null {
    const runs = this.runs;
    runs.clear();
    for (let r = 0; r < rows.hashes.length; r++) {
      const h = rows.hashes[r];
      if (r > 0 && rows.hashes[r - 1] === h) continue;
      if (runs.has(h)) return null;
      runs.set(h, r);
    }
    return runs;
  }

  /** `vote` with the runs of `indexRows(rows)`. */
  voteIndexed(batch: LandmarkBatch, rows: IndexRows, runs: Map<number, number> | null, audioS: number): number {
    this.expire(audioS);
    if (batch.count === 0 || rows.hashes.length === 0) return 0;
    if (!runs) return this.voteUngrouped(batch, rows, audioS);
    const before = this.totalVotes;
    // A step that brings no matches is not a step of the anchor groups, whether its lookup was its own or a longer push's.
    let stepped = false;
    for (let i = 0; i < batch.count; i++) {
      const h = batch.hashes[i];
      const start = runs.get(h);
      if (start === undefined) continue;
      if (!stepped) {
        this.groups.nextStep();
        stepped = true;
      }
      const qt = batch.times[i];
      const sp = batch.speeds[i];
      const anchor = anchorOf(qt, h);
      for (let r = start; r < rows.hashes.length && rows.hashes[r] === h; r++) this.match(voteKey(rows.tracks[r], sp, rows.times[r] - qt), anchor, audioS);
    }
    return this.totalVotes - before;
  }

  /** The same votes when an index returns a hash's rows scattered: gathered by hash, each hash's rows in their order, then voted as grouped rows. */
  private voteUngrouped(batch: LandmarkBatch, rows: IndexRows, audioS: number): number {
    const order = Array.from({ length: rows.hashes.length }, (_, r) => r).sort((a, b) => rows.hashes[a] - rows.hashes[b] || a - b);
    const grouped: IndexRows = { hashes: order.map((r) => rows.hashes[r]), tracks: order.map((r) => rows.tracks[r]), times: order.map((r) => rows.times[r]) };
    return this.voteIndexed(batch, grouped, this.indexRows(grouped), audioS);
  }

  /**
   * One hash match of a query anchor at alignment `key`. With
   * `minAnchorMatches` of 2 or more it votes once that many hashes of the
   * same anchor have matched there (the earlier ones then vote with it), or
   * at once when an alignment within the offset tolerance already holds
   * votes: a lone chance match at a fresh alignment, the bulk of what audio
   * outside the catalog brings, never enters the window.
   */
  private match(key: number, anchor: number, audioS: number): void {
    const need = this.cfg.minAnchorMatches;
    if (need <= 1) {
      this.castVote(key, audioS);
      return;
    }
    const groups = this.groups;
    const m = groups.add(key, anchor);
    if (m >= need) {
      for (let c = groups.cast; c < m; c++) this.castVote(key, audioS);
      groups.cast = m;
    } else if (this.open(key)) {
      this.castVote(key, audioS);
      groups.cast = groups.cast + 1;
    }
  }

  /** Whether an alignment within the offset tolerance of `key` holds votes. */
  private open(key: number): boolean {
    // Most matches are chance ones far from every voted alignment: the cover count says so without a probe.
    if (this.cover[coverSlot(key)] === 0) return false;
    const tol = this.cfg.offsetTolerance;
    for (let j = key - tol; j <= key + tol; j++) if (this.exact.votes(j) > 0) return true;
    return false;
  }

  /** `key` got its first vote (+1) or lost its last (−1): counted in the cover of every key within the tolerance. */
  private coverAround(key: number, delta: number): void {
    const tol = this.cfg.offsetTolerance;
    for (let j = key - tol; j <= key + tol; j++) this.cover[coverSlot(j)] += delta;
  }

  private castVote(key: number, audioS: number): void {
    this.add(key, audioS);
    this.totalVotes++;
  }

  private add(key: number, stamp: number): void {
    if (this.size === this.capacity) this.evictOldest();
    else if (this.size === this.keys.length) this.growFifo();
    const slot = wrap(this.head + this.size, this.keys.length);
    this.keys[slot] = key;
    this.size++;
    this.stampVote(stamp);
    const tol = this.cfg.offsetTolerance;
    const exact = this.exact;
    const c = exact.addVotes(key, 1);
    if (c === 1) this.coverAround(key, 1);
    // A key that just turned warm is near itself.
    if (c === this.warmAt) this.markNearWarm(key, 1);
    else if (exact.lastNear === 0) return;
    // The scores of key − tol … key + tol went up by one: the hot ones are
    // counted on, the others are summed from the exact counts around the key.
    const around = this.around;
    let read = false;
    for (let j = key - tol; j <= key + tol; j++) {
      if (this.hot.votes(j) > 0) {
        this.hot.addVotes(j, 1);
        continue;
      }
      if (!read) {
        for (let d = -2 * tol; d <= 2 * tol; d++) around[d + 2 * tol] = d === 0 ? c : exact.votes(key + d);
        read = true;
      }
      let sum = 0;
      for (let d = j - key - tol; d <= j - key + tol; d++) sum += around[d + 2 * tol];
      if (sum >= this.hotAt) this.hot.addVotes(j, sum);
    }
  }

  private evictOldest(): void {
    const key = this.keys[this.head];
    this.head = wrap(this.head + 1, this.keys.length);
    this.size--;
    if (--this.runVotes[this.runHead] === 0) {
      this.runHead = wrap(this.runHead + 1, this.runStamps.length);
      this.runCount--;
    }
    const tol = this.cfg.offsetTolerance;
    // The near count is read before the key can stop being warm: it is the one the scores were kept by.
    const c = this.exact.addVotes(key, -1);
    if (c === 0) this.coverAround(key, -1);
    // Scores only fall here: a key that was not hot stays so, and a hot one
    // leaves when it drops below the threshold.
    if (this.exact.lastNear > 0) {
      for (let j = key - tol; j <= key + tol; j++) {
        const s = this.hot.votes(j);
        if (s > 0) this.hot.addVotes(j, s - 1 < this.hotAt ? -s : -1);
      }
    }
    if (c === this.warmAt - 1) this.markNearWarm(key, -1);
  }

  /** `key` became warm (+1) or stopped being so (−1): counted at every key within twice the tolerance. */
  private markNearWarm(key: number, delta: number): void {
    const tol = this.cfg.offsetTolerance;
    for (let k = key - 2 * tol; k <= key + 2 * tol; k++) this.exact.addNear(k, delta);
  }

  /** Counts the newest vote in the run of its audio time. */
  private stampVote(stamp: number): void {
    const n = this.runStamps.length;
    if (this.runCount > 0) {
      const last = wrap(this.runHead + this.runCount - 1, n);
      if (this.runStamps[last] === stamp) {
        this.runVotes[last]++;
        return;
      }
    }
    if (this.runCount === n) this.growRuns();
    const slot = wrap(this.runHead + this.runCount, this.runStamps.length);
    this.runStamps[slot] = stamp;
    this.runVotes[slot] = 1;
    this.runCount++;
  }

  private growFifo(): void {
    this.keys = unwrapRing(this.keys, this.head, this.size, new Float64Array(Math.min(this.capacity, this.keys.length * 2)));
    this.head = 0;
  }

  private growRuns(): void {
    const n = this.runStamps.length * 2;
    this.runStamps = unwrapRing(this.runStamps, this.runHead, this.runCount, new Float64Array(n));
    this.runVotes = unwrapRing(this.runVotes, this.runHead, this.runCount, new Int32Array(n));
    this.runHead = 0;
  }

  /** Drops votes cast more than `windowS` seconds of audio ago. */
  expire(audioS: number): void {
    const limit = audioS - this.cfg.windowS;
    while (this.runCount > 0 && this.runStamps[this.runHead] < limit) {
      for (let n = this.runVotes[this.runHead]; n > 0; n--) this.evictOldest();
    }
  }

  /** Between alignments of equal score, the one with more votes exactly on it, then the earlier one. */
  private beats(a: number, b: number): boolean {
    const ca = this.exact.votes(a);
    const cb = this.exact.votes(b);
    return ca !== cb ? ca > cb : a < b;
  }

  /**
   * The leading candidate, or null when no alignment has reached the hot
   * threshold. It depends on the hot scores alone (and on the exact counts
   * of hot keys, which change only with their scores), so it is computed
   * again only after the hot table changed: on audio that matches nothing,
   * most steps leave it as it was.
   */
  leader(): Candidate | null {
    if (this.leaderEdits !== this.hot.edits) {
      this.leaderCache = this.findLeader();
      this.leaderEdits = this.hot.edits;
    }
    return this.leaderCache;
  }

  private findLeader(): Candidate | null {
    const n = this.hot.size;
    if (n === 0) return null;
    if (this.scratchKeys.length < n) {
      this.scratchKeys = new Float64Array(n * 2);
      this.scratchScores = new Int32Array(n * 2);
    }
    const keys = this.scratchKeys;
    const scores = this.scratchScores;
    const hot = this.hot;
    let i = 0;
    let best = -1;
    for (let slot = 0; slot < hot.capacity; slot++) {
      const score = hot.votesAt(slot);
      if (score === 0) continue;
      const key = hot.keyAt(slot);
      keys[i] = key;
      scores[i] = score;
      if (best < 0 || score > scores[best] || (score === scores[best] && this.beats(key, keys[best]))) best = i;
      i++;
    }
    const bestKey = keys[best];
    const votes = scores[best];
    const bestTrack = Math.floor(bestKey / (SPEED_SLOTS * OFFSET_SPAN));
    const offsetFrames = (bestKey % OFFSET_SPAN) - OFFSET_BIAS;
    // Scores below the hot threshold are not tracked: count them as just below it.
    let runnerUp = this.hotAt - 1;
    let sameTrack = this.hotAt - 1;
    for (let j = 0; j < n; j++) {
      const track = Math.floor(keys[j] / (SPEED_SLOTS * OFFSET_SPAN));
      if (track !== bestTrack) {
        if (scores[j] > runnerUp) runnerUp = scores[j];
      } else if (scores[j] > sameTrack) {
        const offset = (keys[j] % OFFSET_SPAN) - OFFSET_BIAS;
        if (Math.abs(offset - offsetFrames) > this.cfg.distinctOffsetFrames) sameTrack = scores[j];
      }
    }
    const speedIndex = Math.floor(bestKey / OFFSET_SPAN) % SPEED_SLOTS;
    const margin = Math.min(votes - this.cfg.minRatio * runnerUp, votes - this.cfg.minOffsetRatio * sameTrack);
    const confidence = margin <= 0 ? 0 : 1 - Math.exp(-margin / this.cfg.minVotes);
    return { track: bestTrack, speedIndex, offsetFrames, votes, runnerUp, sameTrackRunnerUp: sameTrack, confidence: Math.round(confidence * 1000) / 1000 };
  }

  /** The leader if the evidence is enough to report it, else null. */
  decide(): Candidate | null {
    const c = this.leader();
    if (!c) return null;
    const cfg = this.cfg;
    if (c.votes < cfg.minVotes || c.votes < cfg.minRatio * c.runnerUp) return null;
    if (c.votes >= cfg.minOffsetRatio * c.sameTrackRunnerUp) return c;
    return c.votes >= cfg.ambiguousVotes && c.votes >= cfg.ambiguousRatio * c.runnerUp ? c : null;
  }

  reset(): void {
    this.exact.clear();
    this.hot.clear();
    this.head = 0;
    this.size = 0;
    this.runHead = 0;
    this.runCount = 0;
    this.totalVotes = 0;
    this.groups.clear();
    this.cover.fill(0);
  }
}
