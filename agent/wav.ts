// WAV files for the CLI: read a file and decode it with the shared decoder in
// wasm/wav.ts (the worker decodes uploaded bodies with the same code).
//
//   import { readWavFile, WavError } from './wav.ts';
//   const wav = await readWavFile('take1.wav');   // { sampleRate, channels, samples (mono Float32Array), ... }
//
// Failures are WavError (format problems, with a `code`) or CliError (the file
// cannot be read), each one line a user can act on.
import { readFile, stat } from 'node:fs/promises';
import { CliError } from './cli-error.ts';
import { decodeWav, encodeWav, readWavHeader, WavError, type DecodedWav, type EncodeWavOptions, type WavInput } from '../wasm/wav.ts';

export { decodeWav, encodeWav, readWavHeader, WavError, type DecodedWav, type EncodeWavOptions, type WavInput };
export type { WavErrorCode } from '../wasm/wav.ts';

/** Files larger than this are refused before reading (4 GiB is the RIFF limit anyway). */
export const MAX_WAV_FILE_BYTES = 4 * 1024 ** 3;

export async function readWavFile(path: string): Promise<DecodedWav> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CliError(`${path} is not a file`);
    size = s.size;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read ${path}: ${describeFsError(e)}`);
  }
  if (size > MAX_WAV_FILE_BYTES) throw new CliError(`${path} is larger than ${MAX_WAV_FILE_BYTES} bytes`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${describeFsError(e)}`);
  }
  try {
    return decodeWav(bytes);
  } catch (e) {
    if (e instanceof WavError) throw new WavFileError(path, e);
    throw e;
  }
}

/** A WavError that names the file it came from. */
export class WavFileError extends WavError {
  readonly path: string;
  constructor(path: string, cause: WavError) {
    super(cause.code, `${path}: ${cause.message}`);
    this.name = 'WavFileError';
    this.path = path;
  }
}

function describeFsError(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return e instanceof Error ? e.message : String(e);
}
