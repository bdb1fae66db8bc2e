// Named presets for the landmark fingerprinter (Olaf-style `config_default`):
// every tunable lives here so the catalog, the live matcher, the CLI and the
// benchmark agree on one set of numbers. Changing `default` changes the hash
// layout or its statistics, so a catalog built with one preset must be queried
// with the same one.

export interface FingerprintConfig {
  /** Analysis rate; every input is resampled to it. */
  sampleRate: number;
  /** FFT size (samples at `sampleRate`). */
  frameSize: number;
  /** Hop between frames; one frame is one unit of landmark time. */
  hop: number;
  /** Band searched for peaks. Above ~4 kHz lossy codecs and phones keep little. */
  minHz: number;
  maxHz: number;
  /** A peak is the maximum of a (2·peakBins+1) × (2·peakFrames+1) neighbourhood. */
  peakBins: number;
  peakFrames: number;
  /** Half-width (bins) of the per-frame spectral envelope a peak must stand above. */
  envelopeBins: number;
  /** Minimum height above that envelope, in dB: rejects the bumps of a noise floor. */
  minProminenceDb: number;
  /** Peaks quieter than this (dB relative to a full-scale sine) are ignored: silence and dither. */
  minDbfs: number;
  /** At most this many peaks per frame, strongest first. */
  maxPeaksPerFrame: number;
  /** Target zone: pairs span 1..maxDt frames and at most ±maxDf bins. */
  maxDt: number;
  maxDf: number;
  /** Each anchor pairs with at most this many later peaks (Wang's fan-out). */
  fanOut: number;
}

export interface MatchConfig {
  /** Speed factors searched for a live query (1 = as recorded). */
  speeds: readonly number[];
  /**
   * Hash matches of one query anchor at one alignment (within two decision
   * steps) before they vote there, unless the alignment already holds votes;
   * 1: every match votes. An anchor pairs with several targets, so a true
   * alignment gets its matches in groups and a chance one mostly alone:
   * at 2, audio outside the catalog casts ~1/20 of the votes it would
   * (docs/identification.md).
   */
  minAnchorMatches: number;
  /** Votes (aligned hash matches) a candidate needs before it is reported. */
  minVotes: number;
  /** The winner must have this many times the votes of the best other track. */
  minRatio: number;
  /**
   * The winning offset must have this many times the votes of any other
   * offset of the same track (more than `distinctOffsetFrames` away): music
   * repeats itself, and a loop heard for half a second cannot say which pass
   * it is, nor can a drum pattern shared by two songs say anything at all.
   */
  minOffsetRatio: number;
  /** Offsets closer than this (frames) count as the same alignment for `minOffsetRatio`. */
  distinctOffsetFrames: number;
  /**
   * A track whose alignment stays ambiguous (an exact loop) is still reported
   * once its evidence against every other track is this overwhelming: this
   * many votes, and `ambiguousRatio` times the best other track.
   */
  ambiguousVotes: number;
  ambiguousRatio: number;
  /**
   * Hashes with more catalog rows than this are ignored (a stop list, as text
   * search drops its most common words): a drum pattern or a held chord that
   * recurs all over the catalog says little and costs many votes.
   */
  maxRowsPerHash: number;
  /** Votes older than this (seconds of stream audio) are forgotten, so a track change wins quickly. */
  windowS: number;
  /** Candidate offsets within this many frames vote together (resampling and peak jitter). */
  offsetTolerance: number;
}

const fingerprintDefault: FingerprintConfig = {
  sampleRate: 11025,
  frameSize: 1024,
  hop: 256,
  minHz: 250,
  maxHz: 4000,
  peakBins: 8,
  peakFrames: 4,
  envelopeBins: 24,
  minProminenceDb: 8,
  minDbfs: -75,
  maxPeaksPerFrame: 5,
  maxDt: 48,
  maxDf: 60,
  fanOut: 6,
};

const matchDefault: MatchConfig = {
  speeds: [1, 0.985, 1.015, 0.97, 1.03],
  minAnchorMatches: 2,
  minVotes: 14,
  minRatio: 3.5,
  minOffsetRatio: 2,
  distinctOffsetFrames: 20,
  ambiguousVotes: 40,
  ambiguousRatio: 6,
  maxRowsPerHash: 48,
  windowS: 12,
  offsetTolerance: 1,
};

export const FINGERPRINT_PRESETS = { default: fingerprintDefault } as const;
export const MATCH_PRESETS = {
  default: matchDefault,
  /** No speed search: cheaper, for queries known to play at the recorded speed. */
  exactSpeed: { ...matchDefault, speeds: [1] },
} as const;

/** Seconds per landmark frame of a config. */
export function frameSeconds(cfg: FingerprintConfig): number {
  return cfg.hop / cfg.sampleRate;
}

/**
 * Names the hash layout and the `default` preset's statistics. Fingerprints
 * uploaded by a client must carry it: hashes from another version would sit
 * in the catalog and never match.
 */
export const FINGERPRINT_VERSION = 'landmark-pairs-v1';

/** Bits of a landmark hash: 9 of anchor frequency, 7 of frequency difference, 6 of time difference. */
export const HASH_BITS = 22;
