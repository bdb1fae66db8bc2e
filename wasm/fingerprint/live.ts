// A live query: PCM chunks in, match decisions out. Glue between the
// fingerprinter (what the stream sounds like), a catalog lookup (who else
// sounds like that, supplied by the caller: shards in the Durable Object, a
// MemoryIndex in tests and the benchmark) and the offset voter.
import type { KissFFT } from '../kissfft.ts';
import { frameSeconds, type FingerprintConfig, type MatchConfig } from './config.ts';
import { OffsetVoter, type Candidate, type IndexRows } from './matcher.ts';
import { StreamFingerprinter } from './stream.ts';

const DECIDE_EVERY_S = 0.1;

/** Catalog rows for `hashes`, leaving out any hash with more than `maxRowsPerHash` rows. */
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
  lookups = 0;
  private pendingVotes = 0;
  private decidedAtS = -Infinity;

  constructor(kiss: KissFFT, fp: FingerprintConfig, match: MatchConfig, inputRate: number, lookup: Lookup, maxChunk = 16384) {
    this.fingerprinter = new StreamFingerprinter(kiss, fp, inputRate, { speeds: match.speeds, maxChunk });
    this.voter = new OffsetVoter(match);
    this.lookup = lookup;
    this.frameS = frameSeconds(fp);
  }

  get audioS(): number {
    return this.fingerprinter.audioS;
  }

  /** Consumes one chunk. Calls must not overlap: the landmark batch is reused. */
  async push(samples: Float32Array): Promise<PushResult> {
    if (this.busy) throw new Error('LiveMatcher.push called while a previous push is still running');
    this.busy = true;
    try {
      const batch = this.fingerprinter.push(samples);
      const audioS = this.fingerprinter.audioS;
      let votes = 0;
      if (batch.count > 0) {
        this.landmarks += batch.count;
        // Distinct hashes, sorted: the same hash comes from several speeds and anchors.
        const sorted = batch.hashes.slice(0, batch.count).sort();
        let n = 0;
        for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[n++] = sorted[i];
        this.lookups += n;
        const rows = await this.lookup(sorted.subarray(0, n), this.voter.cfg.maxRowsPerHash);
        votes = this.voter.vote(batch, rows, audioS);
      } else {
        this.voter.expire(audioS);
      }
      // A decision can only change when votes arrive; weighing them every
      // DECIDE_EVERY_S is enough, however small the frames a client sends.
      this.pendingVotes += votes;
      let match: LiveMatch | null = null;
      // While the search is narrowed to one speed, a stream that moved on to
      // music at another speed casts almost no votes: the decision is weighed
      // anyway, so the narrowing ends once the old track's votes age out.
      const narrowed = this.fingerprinter.activeSpeeds < this.fingerprinter.speeds.length;
      if ((this.pendingVotes > 0 || narrowed) && audioS - this.decidedAtS >= DECIDE_EVERY_S - 1e-6) {
        this.pendingVotes = 0;
        this.decidedAtS = audioS;
        const c = this.voter.decide();
        match = this.report(c, audioS);
        // Speed hypotheses are searched only while nothing is decided: once the
        // stream's track and speed are known, pairing the other four only pays
        // for votes that cannot change the answer. A change of track first
        // shows as the old track losing its decision, and the full search
        // resumes from that decision on.
        this.fingerprinter.focus(c ? c.speedIndex : null);
      }
      return { match, landmarks: batch.count, votes };
    } finally {
      this.busy = false;
    }
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
    this.fingerprinter.focus(null);
  }

  dispose(): void {
    this.fingerprinter.dispose();
  }
}
