// The catalog wire protocol: REST bodies of /api/v1/catalog and the track
// documents it returns. Imported by the worker, the CatalogShard objects, the
// CLI and the tests.
import { z } from 'zod';
import { FINGERPRINT_VERSION, HASH_BITS } from '../../wasm/fingerprint/config.ts';

export { FINGERPRINT_VERSION };

/** Uploaded WAV bodies are limited to this (about 6 minutes of 44.1 kHz stereo 16-bit). */
export const MAX_CATALOG_WAV_BYTES = 64 * 1024 * 1024;
/** JSON fingerprint uploads are limited to this. */
export const MAX_CATALOG_JSON_BYTES = 16 * 1024 * 1024;
/** The longest track accepted, seconds. */
export const MAX_TRACK_SECONDS = 4 * 3600;
/** Landmarks per track (at ~70 per second, about 4 hours). */
export const MAX_TRACK_LANDMARKS = 1_000_000;

export const TrackMetadata = z.object({
  title: z.string().trim().min(1).max(200),
  artist: z.string().trim().max(200).optional(),
});

/** Query parameters of a WAV upload: `?title=…&artist=…` (or the `x-track-title` / `x-track-artist` headers). */
export const WavUploadQuery = TrackMetadata.extend({
  wait: z.enum(['0', '1', 'true', 'false']).optional(),
});

/** Fingerprints computed by a client (the CLI) with the same code as the server. */
export const FingerprintUpload = TrackMetadata.extend({
  duration_s: z.number().positive().max(MAX_TRACK_SECONDS),
  fingerprint_version: z.literal(FINGERPRINT_VERSION),
  hashes: z.array(z.number().int().min(0).max(2 ** HASH_BITS - 1)).max(MAX_TRACK_LANDMARKS),
  times: z.array(z.number().int().min(0).max(2 ** 31 - 1)).max(MAX_TRACK_LANDMARKS),
}).refine((b) => b.hashes.length === b.times.length, { message: 'hashes and times must have the same length', path: ['times'] });
export type FingerprintUpload = z.infer<typeof FingerprintUpload>;

export const TRACK_STATUSES = ['ingesting', 'ready', 'failed'] as const;
export type TrackStatus = (typeof TRACK_STATUSES)[number];

export interface Track {
  track_id: number;
  title: string;
  artist: string | null;
  duration_s: number;
  /** Landmarks stored for the track. */
  fingerprints: number;
  status: TrackStatus;
  created_ms: number;
  /** The ingestion job, when it ran as one. */
  job_id: string | null;
  /** Why ingestion failed. */
  error?: string;
}

export interface TrackList {
  tracks: Track[];
  /** Pass as `?after=` for the next page; null on the last page. */
  next_after: number | null;
}

/** `POST /api/v1/catalog/tracks` answers 202 with the job to watch (201 with the finished track under `?wait=1`). */
export interface IngestAccepted {
  track_id: number;
  job_id: string;
  stream_url: string;
  status_url: string;
  track: Track;
}

export interface TrackDeleted {
  deleted: true;
  track_id: number;
  fingerprints_removed: number;
}

export const TRACK_ID_PATTERN = /^[1-9][0-9]{0,14}$/;
