// Real hardware through audify (RtAudio bindings: ALSA/PulseAudio/JACK on
// Linux, CoreAudio, WASAPI/ASIO; prebuilt binaries for the common platforms).
// It is an optional peer dependency, loaded only when a device source is asked
// for, so installing roomtone never compiles native code.

import type { BufferReport, DeviceClock } from './device-clock.ts';
import { CliError } from '../cli-error.ts';
import { localNow } from '../../src/client/clock-sync.ts';

const INSTALL_HINT = 'device sources need the optional package "audify": run `npm install audify` in the roomtone folder (or use --source sim or --source wav:FILE)';

interface AudifyDevice {
  id: number;
  name: string;
  inputChannels: number;
  outputChannels: number;
  preferredSampleRate: number;
  sampleRates: number[];
}

interface RtAudioLike {
  getDevices(): AudifyDevice[];
  openStream(
    output: null,
    input: { deviceId: number; nChannels: number; firstChannel: number },
    format: number,
    sampleRate: number,
    frameSize: number,
    streamName: string,
    inputCallback: (pcm: Buffer) => void,
    frameOutputCallback: null,
  ): void;
  start(): void;
  stop(): void;
  closeStream(): void;
}

async function loadAudify(): Promise<{ RtAudio: new () => RtAudioLike; RtAudioFormat: { RTAUDIO_FLOAT32: number } }> {
  try {
    const name = 'audify';
    return (await import(name)) as never;
  } catch {
    throw new CliError(INSTALL_HINT);
  }
}

export async function listDevices(): Promise<AudifyDevice[]> {
  const { RtAudio } = await loadAudify();
  return new RtAudio().getDevices();
}

export async function openDeviceClock(name: string, sampleRate: number, bufferSize: number): Promise<DeviceClock> {
  const audify = await loadAudify();
  const rt = new audify.RtAudio();
  const devices = rt.getDevices().filter((d) => d.inputChannels > 0);
  const device = devices.find((d) => d.name === name) ?? devices.find((d) => d.name.toLowerCase().includes(name.toLowerCase()));
  if (!device) {
    const known = devices.map((d) => `"${d.name}"`).join(', ') || 'none';
    throw new CliError(`no input device matches "${name}"; devices with inputs: ${known} (see roomtone devices)`);
  }
  if (device.sampleRates.length && !device.sampleRates.includes(sampleRate)) {
    throw new CliError(`${device.name} does not run at ${sampleRate} Hz; it offers ${device.sampleRates.join(', ')}`);
  }
  let counter = 0;
  let running = false;
  return {
    name: `device:${device.name}`,
    sampleRate,
    bufferSize,
    async start(onBuffer: (r: BufferReport) => void) {
      rt.openStream(
        null,
        { deviceId: device.id, nChannels: 1, firstChannel: 0 },
        audify.RtAudioFormat.RTAUDIO_FLOAT32,
        sampleRate,
        bufferSize,
        'roomtone',
        (pcm: Buffer) => {
          const audio = new Float32Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
          counter += audio.length;
          // audify gives no hardware timestamp: the callback time stands in for it.
          onBuffer({ deviceSample: counter, localMs: localNow(), audio });
        },
        null,
      );
      rt.start();
      running = true;
    },
    async stop() {
      if (!running) return;
      running = false;
      rt.stop();
      rt.closeStream();
    },
  };
}
