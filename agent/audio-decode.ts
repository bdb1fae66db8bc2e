// Reads an audio file for the CLI as mono Float32 samples: WAV with the
// shared decoder (agent/wav.ts), anything else (ogg, mp3, flac, m4a…) through
// ffmpeg when it is installed. ffmpeg is a process, not a library, so the
// CLI stays dependency-free for WAV users.
import { spawn } from 'node:child_process';
import { extname } from 'node:path';
import { access } from 'node:fs/promises';
import { CliError } from './cli-error.ts';
import { decodeWav, readWavFile } from './wav.ts';

export interface DecodedAudio {
  samples: Float32Array;
  sampleRate: number;
  durationS: number;
}

/** Non-WAV files are decoded at this rate: the fingerprinter's input rate, so no second resampling. */
const FFMPEG_RATE = 22050;

export async function readAudioFile(path: string): Promise<DecodedAudio> {
  const ext = extname(path).toLowerCase();
  if (ext === '.wav' || ext === '.wave') {
    const wav = await readWavFile(path);
    return { samples: wav.samples, sampleRate: wav.sampleRate, durationS: wav.durationS };
  }
  try {
    await access(path);
  } catch {
    throw new CliError(`cannot read ${path}: no such file`);
  }
  const wav = await ffmpegToWav(path);
  const decoded = decodeWav(wav);
  return { samples: decoded.samples, sampleRate: decoded.sampleRate, durationS: decoded.durationS };
}

function ffmpegToWav(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', path, '-vn', '-ac', '1', '-ar', String(FFMPEG_RATE), '-c:a', 'pcm_f32le', '-f', 'wav', 'pipe:1'];
    let child;
    try {
      child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      reject(ffmpegMissing(path));
      return;
    }
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? ffmpegMissing(path) : new CliError(`ffmpeg failed on ${path}: ${e.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new CliError(`cannot decode ${path}: ${err.trim().split('\n').pop() || `ffmpeg exited with ${code}`}`));
    });
  });
}

function ffmpegMissing(path: string): CliError {
  return new CliError(`cannot decode ${path}: only WAV is read natively; install ffmpeg (e.g. apt-get install ffmpeg) for ${extname(path) || 'this format'}, or convert the file to WAV`);
}
