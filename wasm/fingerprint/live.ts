// A live query: PCM chunks in, match decisions out. Glue between the
// fingerprinter (what the stream sounds like), a catalog lookup (who else
// sounds like that, supplied by the caller: shards in the Durable Object, a
// MemoryIndex in tests and the benchmark) and the offset voter.
import type { KissFFT } from '../kissfft.ts';
import { frameSeconds, type FingerprintConfig, type MatchConfig } from './config.ts';
import { OffsetVoter, type Candidate, type IndexRows } from './matcher.ts';
import { StreamFingerprinter, type LandmarkBatch } from './stream.ts';

const DECIDE_EVERY_S = 0.1;
const EMPTY_ROWS: IndexRows = { hashes: new Uint32Array(0), tracks: new Int32Array(0), times: new Int32Array(0) };

/** The landmarks of one DECIDE_EVERY_S step of a push, copied out of the fingerprinter's reused batch. */
interface Step extends LandmarkBatch {
  audioS: number;
}

/** Copies `b` into `st`, growing its arrays only when a step holds more landmarks than any before it. */
function copyStep(st: Step, b: LandmarkBatch, audioS: number): void {
  if (st.hashes.length < b.count) {
    const size = Math.max(b.count, 2 * st.hashes.length);
    st.hashes = new Uint32Array(size);
    st.times = new Int32Array(size);
    st.speeds = new Uint8Array(size);
  }
  st.hashes.set(b.hashes.subarray(0, b.count));
  st.times.set(b.times.subarray(0, b.count));
  st.speeds.set(b.speeds.subarray(0, b.count));
  st.count = b.count;
  st.audioS = audioS;
}

/** Drops the step's landmarks of speed hypotheses the fingerprinter no longer pairs. */
function keepPaired(st: Step, fp: StreamFingerprinter): void {
  let n = 0;
  for (let i = 0; i < st.count; i++) {
    if (!fp.pairs(st.speeds[i])) continue;
    st.hashes[n] = st.hashes[i];
    st.times[n] = st.times[i];
    st.speeds[n] = st.speeds[i];
    n++;
  }
  st.count = n;
}

/**
 * Catalog rows for `hashes`, leaving out any hash with more than `maxRowsPerHash` rows.
 * `hashes` is the matcher's own buffer: read it before the first await, keep no reference.
 */
export type Lookup = (hashes: Uint32Array, maxRowsPerHash: number) => Promise<IndexRows> | IndexRows;

export interface LiveMatch {
  track: number;
  /** Position in the track of the stream's first sample, seconds. */
  offsetS: number;
  /** Playback speed relative to the catalog recording (1 = as recorded). */
  speed: number;
  votes: number;
  confidence: number;
  /** Seconds of stream audio consumed when the decision was made. */
  audioS: number;
}

export interface PushResult {
  /** A match newly reported by this push (first match, or a different track). */
  match: LiveMatch | null;
  landmarks: number;
  votes: number;
}

export class LiveMatcher {
  readonly fingerprinter: StreamFingerprinter;
  readonly voter: OffsetVoter;
  private readonly lookup: Lookup;
  private readonly frameS: number;
  private busy = false;
  /** The match most recently reported. */
  current: LiveMatch | null = null;
  landmarks = 0;
  /** Distinct hashes looked up, and the lookups (catalog round trips) that carried them. */
  lookups = 0;
  lookupRounds = 0;
  /** Whether the latest decision named a track: the stream's track is known for now. */
  decided = false;
  /** Audio (s) at the latest decision that named a track, or where the stream (or its reset) began. */
  private knownAtS = 0;
  private pendingVotes = 0;
  private decidedAtS = -Infinity;
  /** Steps of the current push, reused from push to push (a push of small frames is one step). */
  private readonly steps: Step[] = [];
  private distinct = new Uint32Array(1024);

  constructor(kiss: KissFFT, fp: FingerprintConfig, match: MatchConfig, inputRate: number, lookup: Lookup, maxChunk = 16384) {
    this.fingerprinter = new StreamFingerprinter(kiss, fp, inputRate, { speeds: match.speeds, maxChunk });
    this.voter = new OffsetVoter(match);
    this.lookup = lookup;
    this.frameS = frameSeconds(fp);
  }

  get audioS(): number {
    return this.fingerprinter.audioS;
  }

  /** Seconds of audio since the stream's track was last known (since it began if never); 0 while it is. */
  get unknownForS(): number {
    return this.decided ? 0 : this.audioS - this.knownAtS;
  }

  /**
   * Nothing has been known for a whole vote window: a monitored stream
   * between catalog tracks, where the MatchStream object batches longer.
   */
  get longUnknown(): boolean {
    return this.unknownForS >= this.voter.cfg.windowS;
  }

  /**
   * Consumes one chunk of any length. Calls must not overlap.
   *
   * A long chunk is fingerprinted in steps of DECIDE_EVERY_S of audio, its
   * hashes looked up once (one round trip per shard however much audio the
   * chunk holds), then voted on and decided step by step, so a decision and
   * its `audioS` are the same as if the audio had come in small frames. So
   * are the votes: the steps after a decision vote with the decided speed
   * alone, which is all small frames would pair from then on (the others'
   * hashes were looked up for nothing). Only a lapse mid-chunk differs: the
   * speeds it widens to are paired from the next push.
   */
  async push(samples: Float32Array): Promise<PushResult> {
    if (this.busy) throw new Error('LiveMatcher.push called while a previous push is still running');
    this.busy = true;
    try {
      const fp = this.fingerprinter;
      const stepSamples = Math.max(1, Math.round(DECIDE_EVERY_S * fp.inputRate));
      const steps = this.steps;
      let used = 0;
      let count = 0;
      for (let off = 0; off < samples.length; ) {
        // Steps end on multiples of stepSamples of the whole stream, so the cadence does not depend on how the client frames its audio.
        const end = Math.min(samples.length, off + stepSamples - (fp.samplesIn % stepSamples));
        const b = fp.push(samples.subarray(off, end));
        if (used === steps.length) steps.push({ hashes: new Uint32Array(0), times: new Int32Array(0), speeds: new Uint8Array(0), count: 0, audioS: 0 });
        copyStep(steps[used++], b, fp.audioS);
        count += b.count;
        off = end;
      }
      this.landmarks += count;
      let rows: IndexRows = EMPTY_ROWS;
      if (count > 0) {
        // Distinct hashes, sorted: the same hash comes from several speeds, anchors and steps.
        if (this.distinct.length < count) this.distinct = new Uint32Array(Math.max(count, 2 * this.distinct.length));
        const sorted = this.distinct.subarray(0, count);
        let k = 0;
        for (let j = 0; j < used; j++) {
          sorted.set(steps[j].hashes.subarray(0, steps[j].count), k);
          k += steps[j].count;
        }
        sorted.sort();
        let n = 0;
        for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[n++] = sorted[i];
        this.lookups += n;
        this.lookupRounds++;
        rows = await this.lookup(sorted.subarray(0, n), this.voter.cfg.maxRowsPerHash);
      }
      const runs = this.voter.indexRows(rows);
      let votes = 0;
      let match: LiveMatch | null = null;
      for (let j = 0; j < used; j++) {
        const st = steps[j];
        // A decision earlier in this push narrowed the search: the steps after it vote as small frames would have, with the decided speed alone.
        if (fp.activeSpeeds < fp.speeds.length) keepPaired(st, fp);
        const v = st.count > 0 ? this.voter.voteIndexed(st, rows, runs, st.audioS) : (this.voter.expire(st.audioS), 0);
        votes += v;
        match = this.decideAt(v, st.audioS) ?? match;
      }
      return { match, landmarks: count, votes };
    } finally {
      this.busy = false;
    }
  }

  /** Weighs the votes after one step; a newly reported match, or null. */
  private decideAt(votes: number, audioS: number): LiveMatch | null {
    // A decision can only change when votes arrive; weighing them every
    // DECIDE_EVERY_S is enough, however small the frames a client sends.
    this.pendingVotes += votes;
    // While the search is narrowed to one speed, a stream that moved on to
    // music at another speed casts almost no votes: the decision is weighed
    // anyway, so the narrowing ends once the old track's votes age out.
    const narrowed = this.fingerprinter.activeSpeeds < this.fingerprinter.speeds.length;
    if (!(this.pendingVotes > 0 || narrowed) || audioS - this.decidedAtS < DECIDE_EVERY_S - 1e-6) return null;
    this.pendingVotes = 0;
    this.decidedAtS = audioS;
    const c = this.voter.decide();
    this.decided = c !== null;
    if (c) this.knownAtS = audioS;
    // Speed hypotheses are searched only while nothing is decided: once the
    // stream's track and speed are known, pairing the other four only pays
    // for votes that cannot change the answer. A change of track first
    // shows as the old track losing its decision, and the full search
    // resumes from that decision on.
    this.fingerprinter.focus(c ? c.speedIndex : null);
    return this.report(c, audioS);
  }

  /**
   * Takes back the match just reported (its track turned out not to be
   * reportable, e.g. still ingesting): the next decision for a track reports
   * it afresh.
   */
  retract(): void {
    this.current = null;
  }

  private report(c: Candidate | null, audioS: number): LiveMatch | null {
    if (!c) return null;
    const speed = this.fingerprinter.speeds[c.speedIndex];
    if (this.current && this.current.track === c.track) {
      // Same track: refresh what we know without announcing it again.
      this.current = { ...this.current, votes: c.votes, confidence: Math.max(this.current.confidence, c.confidence) };
      return null;
    }
    this.current = {
      track: c.track,
      offsetS: Math.round(c.offsetFrames * this.frameS * 1000) / 1000,
      speed,
      votes: c.votes,
      confidence: c.confidence,
      audioS: Math.round(audioS * 1000) / 1000,
    };
    return this.current;
  }

  /** Forgets a track (deleted from the catalog) so it cannot be reported again from old votes. */
  resetVotes(): void {
    this.voter.reset();
    this.current = null;
    this.decided = false;
    this.knownAtS = this.audioS;
    this.fingerprinter.focus(null);
  }

  dispose(): void {
    this.fingerprinter.dispose();
  }
}
