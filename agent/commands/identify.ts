import type { Command } from 'commander';
import WebSocket from 'ws';
import { PCM_SOCKET } from '../pcm-socket.ts';
import { baseUrl } from '../http.ts';
import { CliError } from '../cli-error.ts';
import { readAudioFile } from '../audio-decode.ts';
import { Resampler } from '../../wasm/fingerprint/resampler.ts';
import { MATCH_BATCH_S, MATCH_MAX_RATE, MATCH_MIN_RATE, type MatchData, type MatchServerMessage } from '../../src/protocol/index.ts';

export interface IdentifyResult {
  match: { track_id: number; title: string; offset_s: number; confidence: number } | null;
  /** Seconds of audio streamed when the first match arrived, or null. */
  first_match_s: number | null;
}

export interface IdentifyOptions {
  /** Pace the stream at real time (wall clock), as a live source would. */
  realtime?: boolean;
  /** Keep streaming after the first match, to the end of the file. */
  full?: boolean;
  clientId?: string;
  /**
   * Seconds of audio per frame; default MATCH_BATCH_S (each message cost the
   * local runtime ~0.4 ms of CPU: 0.1 s frames made a stream outside the
   * catalog cost 1.4× the CPU).
   */
  chunkS?: number;
}

/** Audio sent but not yet reported back by a status frame may not exceed this (the server queues at most 30 s). */
const MAX_AHEAD_S = 10;

/** Streams decoded audio to the match endpoint as live PCM and resolves with the first match. */
export async function identifySamples(url: URL, samples: Float32Array, rate: number, opts: IdentifyOptions = {}): Promise<IdentifyResult & { matches: MatchData[] }> {
  if (rate < MATCH_MIN_RATE || rate > MATCH_MAX_RATE) {
    samples = Resampler.convert(samples, rate, 22050);
    rate = 22050;
  }
  const clientId = opts.clientId ?? `cli-${Math.random().toString(36).slice(2, 10)}`;
  const wsUrl = new URL(`/api/v1/match/${clientId}`, url);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(wsUrl, PCM_SOCKET);
  const matches: MatchData[] = [];
  let confirmedS = 0;
  let ready = false;
  /** Seconds of audio the server lets a stream send ahead of real time (from `ready`). */
  let burstS = Infinity;
  let ended = false;
  let failure: Error | null = null;
  const wakers: Array<() => void> = [];
  const wake = () => {
    for (const w of wakers.splice(0)) w();
  };
  const until = (cond: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (cond() || failure || ended ? resolve() : wakers.push(check));
      check();
    });

  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg: MatchServerMessage;
    try {
      msg = JSON.parse(String(data));
    } catch {
      return;
    }
    if (msg.type === 'ready') {
      ready = true;
      if (typeof msg.data.burst_s === 'number') burstS = msg.data.burst_s;
    }
    else if (msg.type === 'match') matches.push(msg.data);
    else if (msg.type === 'status') confirmedS = Math.max(confirmedS, msg.data.audio_s);
    else if (msg.type === 'ended') {
      confirmedS = msg.data.audio_s;
      ended = true;
    } else if (msg.type === 'error') failure = new CliError(`the server refused the stream: ${msg.message} (${msg.code})`);
    wake();
  });
  ws.on('close', () => {
    if (!ended) failure ??= new CliError('the server closed the stream');
    wake();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', (e) => reject(new CliError(`cannot open ${wsUrl.origin}${wsUrl.pathname}: ${e.message}`)));
  });
  ws.send(JSON.stringify({ type: 'hello', sample_rate: rate, format: 'f32' }));
  await until(() => ready);

  const chunk = Math.max(1, Math.round((opts.chunkS ?? MATCH_BATCH_S) * rate));
  const start = performance.now();
  let sent = 0;
  try {
    while (sent < samples.length && !failure && !(matches.length && !opts.full)) {
      const part = samples.slice(sent, Math.min(samples.length, sent + chunk));
      ws.send(part.buffer);
      sent += part.length;
      const sentS = sent / rate;
      if (opts.realtime) {
        const due = start + sentS * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else if (sentS > (performance.now() - start) / 1000 + burstS * 0.9) {
        // Past the server's burst allowance: no faster than real time from here
        // (with a margin, as the server's clock started a little earlier).
        const wait = start + (sentS - burstS * 0.9) * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else if (sentS - confirmedS > MAX_AHEAD_S) {
        await until(() => sentS - confirmedS <= MAX_AHEAD_S / 2 || matches.length > 0);
      } else if ((sent / chunk) % 20 === 0) {
        // Let replies in between bursts.
        await new Promise((r) => setImmediate(r));
      }
    }
    if (failure) throw failure;
    ws.send(JSON.stringify({ type: 'end' }));
    await until(() => ended);
    if (failure && !ended) throw failure;
  } finally {
    ws.close(1000, 'done');
  }
  const first = matches[0] ?? null;
  return {
    match: first ? { track_id: first.track_id, title: first.title, offset_s: first.offset_s, confidence: first.confidence } : null,
    first_match_s: first ? first.audio_s : null,
    matches,
  };
}

export function registerIdentify(program: Command): void {
  program
    .command('identify')
    .description('stream an audio file to the server as live audio and print the track it matches')
    .argument('<file>', 'audio file (WAV; ogg/mp3/flac with ffmpeg)')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--json', 'print {match: {track_id, title, offset_s, confidence} | null, first_match_s}')
    .option('--realtime', 'stream at real time instead of as fast as the server takes it')
    .option('--full', 'keep streaming to the end of the file and print every match')
    .option('--client-id <id>', 'the stream id shown in monitoring (default: random)')
    .action(async (file: string, opts: { url?: string; json?: boolean; realtime?: boolean; full?: boolean; clientId?: string }) => {
      const url = baseUrl(opts.url);
      const audio = await readAudioFile(file);
      const result = await identifySamples(url, audio.samples, audio.sampleRate, { realtime: opts.realtime, full: opts.full, clientId: opts.clientId });
      if (opts.json) {
        const out: Record<string, unknown> = { match: result.match, first_match_s: result.first_match_s };
        if (opts.full) out.matches = result.matches;
        process.stdout.write(JSON.stringify(out) + '\n');
        return;
      }
      if (!result.match) {
        process.stdout.write('no match\n');
        return;
      }
      for (const m of opts.full ? result.matches : [result.matches[0]]) {
        process.stdout.write(
          `${m.title}${m.artist ? ` — ${m.artist}` : ''} (track ${m.track_id}) at ${m.offset_s.toFixed(2)} s, confidence ${m.confidence.toFixed(2)}, after ${m.audio_s.toFixed(1)} s of audio\n`,
        );
      }
    });
}
