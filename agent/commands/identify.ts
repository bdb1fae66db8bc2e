import type { Command } from 'commander';
import WebSocket from 'ws';
import { PCM_SOCKET } from '../pcm-socket.ts';
import { baseUrl } from '../http.ts';
import { CliError } from '../cli-error.ts';
import { readAudioFile } from '../audio-decode.ts';
import { Resampler } from '../../wasm/fingerprint/resampler.ts';
import { MATCH_BATCH_S, MATCH_MAX_RATE, MATCH_MIN_RATE, maxMatchFrameS, type MatchData, type MatchServerMessage } from '../../src/protocol/index.ts';

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
   * Seconds of audio per frame. By default, paced at real time, the frame
   * the server advises (`frame_s` of `ready` and `status`: the batch it
   * matches, 0.5 or 2 s); ahead of real time, the largest frame the server
   * takes, since the server joins whatever waits into long batches anyway
   * and decisions (and `audio_s`) do not depend on framing. Each message
   * costs the server CPU whatever it carries: 0.1 s frames made a stream
   * outside the catalog cost the local runtime 1.4× the CPU.
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
  /** The frame the server advises (from `ready`, then `status`). */
  let frameS = MATCH_BATCH_S;
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
    if ((msg.type === 'ready' || msg.type === 'status') && msg.data.frame_s > 0) frameS = msg.data.frame_s;
    if (msg.type === 'ready') {
      ready = true;
      if (typeof msg.data.burst_s === 'number') burstS = msg.data.burst_s;
    } else if (msg.type === 'match') matches.push(msg.data);
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

  const start = performance.now();
  const sleepUntilS = async (s: number) => {
    const wait = start + s * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
  const maxFrameS = maxMatchFrameS(rate, 'f32');
  let sent = 0;
  /** Where a frame of `seconds` (or the fixed `chunkS`) starting at `sent` ends. */
  const frameEnd = (seconds: number) => Math.min(samples.length, sent + Math.max(1, Math.round((opts.chunkS ?? seconds) * rate)));
  let frames = 0;
  try {
    while (sent < samples.length && !failure && !(matches.length && !opts.full)) {
      let end: number;
      if (opts.realtime) {
        // As a live source: a frame goes out once the advised frame's audio has been heard. Advice that
        // grows while it waits makes it wait on; advice that shrinks takes effect from the next frame.
        do {
          end = frameEnd(frameS);
          await sleepUntilS(end / rate);
        } while (frameEnd(frameS) > end && !failure);
      } else {
        end = frameEnd(maxFrameS);
        // Within the server's burst allowance (with a margin: its clock started a little earlier), then no faster than real time.
        await sleepUntilS(end / rate - burstS * 0.9);
        const afterS = end / rate;
        if (afterS - confirmedS > MAX_AHEAD_S) await until(() => afterS - confirmedS <= MAX_AHEAD_S / 2 || matches.length > 0);
      }
      if (failure || (matches.length && !opts.full)) break;
      const part = samples.slice(sent, end);
      ws.send(part.buffer);
      sent = end;
      // Let replies in between bursts.
      if (!opts.realtime && ++frames % 20 === 0) await new Promise((r) => setImmediate(r));
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
