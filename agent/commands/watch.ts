import type { Command } from 'commander';
import { RoomClient, RoomCommandError } from '../../src/client/room-client.ts';
import { normalizeRoomCode, formatTime } from '../../src/protocol/index.ts';
import { baseUrl } from '../http.ts';
import { CliError } from '../cli-error.ts';

interface WatchOptions {
  url?: string;
  json?: boolean;
  rate: number;
  duration?: number;
}

export interface WatchSample {
  wall_ms: number;
  seconds: number;
  sample_pos: number;
  beat_pos: number;
  playing: boolean;
  version: number;
  offset_ms: number;
  rtt_ms: number;
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('join a room as a headless viewer and print the playhead as this client sees it')
    .argument('<code>', 'room code')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--json', 'one JSON line per sample: {wall_ms, seconds, sample_pos, beat_pos, playing, version, offset_ms, rtt_ms}')
    .option('--rate <hz>', 'samples per second', (v) => Number(v), 10)
    .option('--duration <s>', 'stop after this many seconds', (v) => Number(v))
    .action(async (codeArg: string, opts: WatchOptions) => {
      const code = normalizeRoomCode(codeArg);
      if (!code) throw new CliError(`not a room code: ${codeArg} (codes are 6 letters and digits, without 0, O, 1, I or L)`, 2);
      if (!Number.isFinite(opts.rate) || opts.rate <= 0 || opts.rate > 1000) throw new CliError('--rate must be between 0 and 1000 Hz', 2);
      const url = baseUrl(opts.url);
      const client = new RoomClient({ url: url.toString(), code });
      client.on('state', (s) => {
        if (!opts.json && (s === 'reconnecting' || s === 'open')) process.stderr.write(`\n[${s}]\n`);
      });
      client.on('expired', ({ reason }) => process.stderr.write(`\nroom expired: ${reason}\n`));
      try {
        await client.connect();
      } catch (e) {
        if (e instanceof RoomCommandError && e.code === 'not_found') throw new CliError(`no room ${code} at ${url.origin}`);
        throw e;
      }
      const period = 1000 / opts.rate;
      const stopAt = opts.duration ? Date.now() + opts.duration * 1000 : Infinity;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (Date.now() >= stopAt || client.state === 'expired' || client.state === 'not_found') {
            clearInterval(timer);
            resolve();
            return;
          }
          const wall = Date.now();
          const p = client.position();
          if (!p) return;
          const sample: WatchSample = {
            wall_ms: wall,
            seconds: p.seconds,
            sample_pos: p.sample_pos,
            beat_pos: p.beat_pos,
            playing: p.playing,
            version: p.version,
            offset_ms: client.sync.offsetMs,
            rtt_ms: client.sync.bestRttMs,
          };
          if (opts.json) process.stdout.write(JSON.stringify(sample) + '\n');
          else
            process.stdout.write(
              `\r${code}  ${p.status.padEnd(7)} ${formatTime(p.seconds)}  bar ${p.bar}.${p.beat_in_bar}  ${client.anchor?.bpm ?? 0} BPM  ` +
                `offset ${sample.offset_ms.toFixed(1)} ms ±${client.sync.uncertaintyMs.toFixed(1)}   `,
            );
        }, period);
        process.once('SIGINT', () => {
          clearInterval(timer);
          resolve();
        });
      });
      client.close();
      if (!opts.json) process.stdout.write('\n');
    });
}
