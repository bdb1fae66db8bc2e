import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { baseUrl, requestJson } from '../http.ts';
import { RoomAgent, RoomCommandError } from '../room-agent.ts';
import { DeviceTransport } from '../transport-driver.ts';
import { SimDeviceClock } from '../sources/sim.ts';
import { WavDeviceClock } from '../sources/wav.ts';
import { listDevices, openDeviceClock } from '../sources/device.ts';
import type { DeviceClock } from '../sources/device-clock.ts';
import { readWavFile } from '../wav.ts';
import { formatTime, normalizeRoomCode } from '../../src/protocol/index.ts';
import { ReconnectingAnalysisSource, analysisUrl, type AnalysisResult } from '../analysis-stream-client.ts';

interface AgentOptions {
  url?: string;
  room?: string;
  token?: string;
  source: string;
  sampleRate: number;
  buffer: number;
  driftPpm: number;
  jitterMs: number;
  clockHz: number;
  bpm: number;
  quiet?: boolean;
  analyze?: string | boolean;
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError(`${name} must be a number, got ${v}`, 2);
  return n;
};

export async function openSource(source: string, sampleRate: number, buffer: number, driftPpm: number, jitterMs: number): Promise<DeviceClock> {
  if (source === 'sim') {
    try {
      return new SimDeviceClock({ sampleRate, bufferSize: buffer, driftPpm, jitterMs });
    } catch (e) {
      throw new CliError(`sim source: ${(e as Error).message}`, 2);
    }
  }
  if (source.startsWith('wav:')) {
    const file = source.slice(4);
    if (!file) throw new CliError('wav source needs a file: --source wav:take1.wav', 2);
    return new WavDeviceClock(`wav:${file}`, await readWavFile(file), buffer);
  }
  if (source.startsWith('device:')) return openDeviceClock(source.slice(7), sampleRate, buffer);
  throw new CliError(`unknown source ${source}: use sim, wav:FILE or device:NAME`, 2);
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description("attach this machine's audio clock to a room: every viewer follows the device's sample counter")
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--room <code>', 'room code (or ROOMTONE_ROOM)')
    .option('--token <token>', "the room's control token (or ROOMTONE_TOKEN; prefer the variable, which stays out of shell history)")
    .option('--source <source>', 'sim | wav:FILE | device:NAME', 'sim')
    .option('--sample-rate <hz>', 'device sample rate (sim, device)', int('--sample-rate'), 48_000)
    .option('--buffer <frames>', 'device buffer size in samples', int('--buffer'), 256)
    .option('--drift-ppm <ppm>', 'sim: crystal error against the host clock', int('--drift-ppm'), 0)
    .option('--jitter-ms <ms>', 'sim: callback timestamp jitter', int('--jitter-ms'), 0)
    .option('--clock-hz <hz>', 'clock reports per second while playing', int('--clock-hz'), 20)
    .option('--bpm <bpm>', 'initial tempo of the transport', int('--bpm'), 120)
    .option('--analyze [name]', "also stream the source's audio to the room's analysis stream NAME (default: agent); wav and device sources")
    .option('--quiet', 'print only errors')
    .addHelpText(
      'after',
      '\nExamples:\n  roomtone agent --url http://127.0.0.1:8787 --room ABC234 --source sim --drift-ppm 200 --jitter-ms 2\n  ROOMTONE_TOKEN=… roomtone agent --room ABC234 --source wav:take1.wav\n\nA second agent with the same token replaces the first, which is told and exits.',
    )
    .action(async (opts: AgentOptions) => {
      const url = baseUrl(opts.url);
      const rawCode = opts.room ?? process.env.ROOMTONE_ROOM;
      if (!rawCode) throw new CliError('no room: pass --room CODE or set ROOMTONE_ROOM', 2);
      const code = normalizeRoomCode(rawCode);
      if (!code) throw new CliError(`not a room code: ${rawCode}`, 2);
      const token = opts.token ?? process.env.ROOMTONE_TOKEN;
      if (!token) throw new CliError("no control token: pass --token or set ROOMTONE_TOKEN (printed once when the room was created)", 2);
      const log = opts.quiet ? () => {} : (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);

      // Ask over HTTP first: "no such room" and "server down" deserve their own words.
      try {
        await requestJson(new URL(`/api/v1/rooms/${code}`, url));
      } catch (e) {
        if (e instanceof CliError && /not_found/.test(e.message)) throw new CliError(`no room ${code} at ${url.origin} (it may have expired)`);
        throw e;
      }
      if (opts.analyze && opts.source === 'sim') throw new CliError('--analyze needs a source with audio: --source wav:FILE or device:NAME', 2);
      const device = await openSource(opts.source, opts.sampleRate, opts.buffer, opts.driftPpm, opts.jitterMs);
      const driver = new DeviceTransport(device, { bpm: opts.bpm });
      const agent = new RoomAgent({ url: url.toString(), code, token, driver, clockHz: opts.clockHz, log });
      let finished: () => void = () => {};
      const done = new Promise<void>((r) => (finished = r));
      agent.client.on('state', (s) => {
        if (s === 'closed' || s === 'expired' || s === 'not_found') finished();
      });
      agent.client.on('expired', ({ reason }) => log(`room expired: ${reason}`));
      const stop = () => finished();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await agent.start();
      } catch (e) {
        await agent.stop();
        if (e instanceof RoomCommandError && e.code === 'expired') return; // already said
        if (e instanceof RoomCommandError && e.code === 'unauthorized') throw new CliError(`room ${code} refused the token: use the control token printed when the room was created`);
        if (e instanceof RoomCommandError && e.code === 'not_found') throw new CliError(`no room ${code} at ${url.origin}`);
        throw e;
      }
      log(`source ${device.name} at ${device.sampleRate} Hz, buffer ${device.bufferSize}`);
      const analysis = opts.analyze ? await startAnalysis(opts.analyze === true ? 'agent' : opts.analyze) : null;
      const status = setInterval(() => {
        const s = driver.state();
        const a = analysis?.last();
        if (a) log(`analysis ${a.pitch ? `${a.pitch.note} ${a.pitch.cents >= 0 ? '+' : ''}${a.pitch.cents.toFixed(0)} c` : 'unvoiced'}  ${a.dynamics.rms_db.toFixed(1)} dBFS  onsets ${analysis!.onsets()}`);
        log(
          `${s.status.padEnd(7)} ${formatTime(s.sample / driver.sampleRate)}  ${s.bpm} BPM  offset ${agent.client.sync.offsetMs.toFixed(2)} ms ` +
            `±${agent.client.sync.uncertaintyMs.toFixed(2)}  reports ${agent.reportsSent}  ${agent.client.state}`,
        );
      }, 5000);
      await done;
      clearInterval(status);

      /**
       * Streams the device audio to the room's analysis stream, each connection
       * stamped with the server time of its first sample; it reconnects by
       * itself after a drop, a restart or a deploy.
       */
      async function startAnalysis(name: string) {
        let last: AnalysisResult | null = null;
        let onsets = 0;
        const source = new ReconnectingAnalysisSource({
          url: analysisUrl(url, { room: code!, name }),
          sampleRate: driver.sampleRate,
          serverTime: (localMs) => agent.client.serverNow(localMs),
          onResult: (r) => {
            last = r;
            onsets += r.onsets.length;
          },
          log,
        });
        driver.onAudio!((audio, _sample, localMs) => source.push(audio, localMs));
        await source.start();
        log(`streaming audio to the room's analysis stream "${name}"`);
        return { last: () => last, onsets: () => onsets, close: () => source.close() };
      }
      const replaced = agent.client.state === 'closed';
      await analysis?.close();
      await agent.stop();
      if (replaced && !opts.quiet) log('stopped');
    });

  program
    .command('devices')
    .description('list audio input devices (needs the optional package audify)')
    .action(async () => {
      const devices = await listDevices();
      if (devices.length === 0) process.stdout.write('no audio devices found\n');
      for (const d of devices) {
        process.stdout.write(`${d.name}  (in ${d.inputChannels}, out ${d.outputChannels}, ${d.preferredSampleRate} Hz preferred)\n`);
      }
    });
}
