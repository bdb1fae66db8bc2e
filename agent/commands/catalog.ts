import type { Command } from 'commander';
import { basename, extname } from 'node:path';
import cliProgress from 'cli-progress';
import WsWebSocket from 'ws';
import { baseUrl, requestJson } from '../http.ts';
import { CliError } from '../cli-error.ts';
import { readAudioFile } from '../audio-decode.ts';
import { loadKissFFT } from '../../wasm/kissfft-node.ts';
import { FINGERPRINT_PRESETS, FINGERPRINT_VERSION, fingerprintSignal } from '../../wasm/fingerprint/index.ts';
import { JobWatcher } from '../../src/client/job-watcher.ts';
import type { IngestAccepted, Track, TrackDeleted, TrackList } from '../../src/protocol/index.ts';

interface AddOptions {
  url?: string;
  token?: string;
  title?: string;
  artist?: string;
  json?: boolean;
  progress?: boolean;
}

/**
 * The `ws` client for the job watcher, whose close gives up on the closing
 * handshake after a moment: Node's built-in WebSocket waited 30 s for the
 * server's close frame against wrangler dev, keeping the CLI alive after its
 * work was done.
 */
class PromptCloseWebSocket extends WsWebSocket {
  override close(code?: number, reason?: string): void {
    super.close(code, reason);
    setTimeout(() => this.terminate(), 250).unref();
  }
}

export function adminToken(opt: string | undefined): string {
  const token = opt ?? process.env.ROOMTONE_ADMIN_TOKEN;
  if (!token) throw new CliError('no admin token: pass --token or set ROOMTONE_ADMIN_TOKEN', 2);
  return token;
}

export interface AddedTrack {
  file: string;
  track_id: number;
  title: string;
  fingerprints: number;
  duration_s: number;
  fingerprint_s: number;
}

/** Fingerprints one file locally and uploads it; resolves when its ingestion job has completed. */
export async function addFile(url: URL, token: string, file: string, meta: { title: string; artist?: string }, onProgress?: (pct: number, stage: string) => void): Promise<AddedTrack> {
  const audio = await readAudioFile(file);
  const t0 = performance.now();
  const fp = fingerprintSignal(await loadKissFFT(), FINGERPRINT_PRESETS.default, audio.samples, audio.sampleRate);
  const fingerprintS = (performance.now() - t0) / 1000;
  onProgress?.(0, 'uploading');
  const body = JSON.stringify({
    title: meta.title,
    ...(meta.artist ? { artist: meta.artist } : {}),
    duration_s: Math.round(audio.durationS * 1000) / 1000,
    fingerprint_version: FINGERPRINT_VERSION,
    hashes: Array.from(fp.hashes),
    times: Array.from(fp.times),
  });
  const accepted = await requestJson<IngestAccepted>(new URL('/api/v1/catalog/tracks', url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  const watcher = new JobWatcher({ statusUrl: accepted.status_url, streamUrl: accepted.stream_url, WebSocket: PromptCloseWebSocket as unknown as typeof WebSocket });
  watcher.on('event', (e) => {
    if (e.type === 'progress') onProgress?.(e.progress, e.stage);
  });
  const last = await watcher.start().done;
  watcher.stop();
  if (last.type === 'error') throw new CliError(`ingesting ${file} failed: ${last.message}`);
  onProgress?.(100, 'done');
  const track = await requestJson<Track>(new URL(`/api/v1/catalog/tracks/${accepted.track_id}`, url));
  return { file, track_id: track.track_id, title: track.title, fingerprints: track.fingerprints, duration_s: track.duration_s, fingerprint_s: Math.round(fingerprintS * 1000) / 1000 };
}

export function registerCatalog(program: Command): void {
  const catalog = program.command('catalog').description('manage the fingerprint catalog used for live identification');

  catalog
    .command('add')
    .description('fingerprint audio files locally (WAV; ogg/mp3/flac with ffmpeg) and add them to the catalog')
    .argument('<files...>', 'audio files')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--token <token>', 'admin token (or ROOMTONE_ADMIN_TOKEN)')
    .option('--title <title>', 'track title (one file only; default: the file name)')
    .option('--artist <artist>', 'artist of every file')
    .option('--json', 'print one JSON line per added track')
    .option('--no-progress', 'no progress bar')
    .action(async (files: string[], opts: AddOptions) => {
      const url = baseUrl(opts.url);
      const token = adminToken(opts.token);
      if (opts.title && files.length > 1) throw new CliError('--title names one track; give one file or leave it out', 2);
      const showBar = opts.progress !== false && !opts.json && process.stderr.isTTY;
      const bars = showBar ? new cliProgress.MultiBar({ format: ' {bar} {percentage}% | {name} | {stage}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
      try {
        for (const file of files) {
          const name = basename(file);
          const bar = bars?.create(100, 0, { name, stage: 'fingerprinting' });
          const added = await addFile(url, token, file, { title: opts.title ?? basename(file, extname(file)), artist: opts.artist }, (pct, stage) => bar?.update(pct, { name, stage }));
          if (opts.json) process.stdout.write(JSON.stringify(added) + '\n');
          else if (!bar) process.stdout.write(`added ${added.title} as track ${added.track_id} (${added.fingerprints} landmarks, ${added.duration_s.toFixed(1)} s)\n`);
        }
      } finally {
        bars?.stop();
      }
    });

  catalog
    .command('list')
    .description('list the tracks in the catalog')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--json', 'print JSON')
    .action(async (opts: { url?: string; json?: boolean }) => {
      const url = baseUrl(opts.url);
      const tracks: Track[] = [];
      let after = 0;
      for (;;) {
        const page = await requestJson<TrackList>(new URL(`/api/v1/catalog/tracks?limit=1000&after=${after}`, url));
        tracks.push(...page.tracks);
        if (page.next_after === null) break;
        after = page.next_after;
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ tracks }) + '\n');
        return;
      }
      for (const t of tracks) process.stdout.write(`${String(t.track_id).padStart(6)}  ${t.status.padEnd(9)} ${t.duration_s.toFixed(1).padStart(7)} s  ${t.title}${t.artist ? ` — ${t.artist}` : ''}\n`);
    });

  catalog
    .command('remove')
    .description('remove a track and its fingerprints')
    .argument('<track_id>', 'track id')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--token <token>', 'admin token (or ROOMTONE_ADMIN_TOKEN)')
    .action(async (id: string, opts: { url?: string; token?: string }) => {
      const url = baseUrl(opts.url);
      const res = await requestJson<TrackDeleted>(new URL(`/api/v1/catalog/tracks/${encodeURIComponent(id)}`, url), {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminToken(opts.token)}` },
      });
      process.stdout.write(`removed track ${res.track_id} (${res.fingerprints_removed} landmarks)\n`);
    });
}
