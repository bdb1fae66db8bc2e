// The catalog and identification CLI against the real worker on workerd:
// `roomtone catalog add` fingerprints files locally and uploads them,
// `roomtone identify` streams a file as live audio.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { encodeWav } from '../../wasm/wav.ts';
import { addNoise, synthMusic } from '../../wasm/fingerprint/test-signals.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const RATE = 22050;

let server: LocalServer;
let dir: string;
const tracks: Float32Array[] = [];

function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [join(ROOT, 'agent/bin/roomtone.js'), ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, ...env } });
}

function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function writeWav(name: string, samples: Float32Array, rate = RATE): string {
  const path = join(dir, name);
  writeFileSync(path, encodeWav(samples, rate));
  return path;
}

beforeAll(async () => {
  server = await startLocalServer();
  dir = mkdtempSync(join(tmpdir(), 'roomtone-identify-'));
  for (let i = 0; i < 3; i++) tracks.push(synthMusic(500 + i, 20, RATE, 3));
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

describe('roomtone catalog and identify', () => {
  it('adds WAV files with the admin token from the environment and lists them', async () => {
    const files = tracks.map((t, i) => writeWav(`track-${i}.wav`, t));
    const { stdout } = await cli(['catalog', 'add', ...files, '--url', server.url, '--artist', 'E2E Band', '--json'], { ROOMTONE_ADMIN_TOKEN: 'test-admin-token' });
    const added = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(added.map((a) => a.title)).toEqual(['track-0', 'track-1', 'track-2']);
    for (const a of added) expect(a.fingerprints).toBeGreaterThan(300);
    const list = JSON.parse((await cli(['catalog', 'list', '--url', server.url, '--json'])).stdout);
    expect(list.tracks.map((t: { title: string; status: string }) => [t.title, t.status])).toEqual([
      ['track-0', 'ready'],
      ['track-1', 'ready'],
      ['track-2', 'ready'],
    ]);
  });

  it('identifies a noisy excerpt and prints the match and when it came', async () => {
    const q = writeWav('query.wav', addNoise(tracks[1].slice(RATE * 5, RATE * 15), 10, 2));
    const { stdout } = await cli(['identify', q, '--url', server.url, '--json']);
    const out = JSON.parse(stdout);
    expect(out.match).toMatchObject({ title: 'track-1' });
    expect(Math.abs(out.match.offset_s - 5)).toBeLessThan(0.06);
    expect(out.match.confidence).toBeGreaterThan(0);
    expect(out.first_match_s).toBeGreaterThan(0);
    expect(out.first_match_s).toBeLessThanOrEqual(3);
  });

  it('streams at real time with --realtime and still matches within seconds', async () => {
    const q = writeWav('query-rt.wav', tracks[2].slice(RATE * 3, RATE * 7));
    const t0 = Date.now();
    const out = JSON.parse((await cli(['identify', q, '--url', server.url, '--json', '--realtime'])).stdout);
    expect(out.match.title).toBe('track-2');
    // It stops streaming at the first match, which takes about that much wall-clock time.
    expect(Date.now() - t0).toBeGreaterThan(out.first_match_s * 1000 - 100);
  });

  it('prints a null match for audio that is not in the catalog', async () => {
    const q = writeWav('other.wav', synthMusic(999, 8, RATE, 3));
    const out = JSON.parse((await cli(['identify', q, '--url', server.url, '--json'])).stdout);
    expect(out).toEqual({ match: null, first_match_s: null });
  });

  it.runIf(hasFfmpeg())('adds an Ogg Vorbis file through ffmpeg and identifies an excerpt of it', async () => {
    const wav = writeWav('source.wav', synthMusic(600, 20, 44100, 3), 44100);
    const ogg = join(dir, 'Ogg Song.ogg');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-c:a', 'libvorbis', '-q:a', '4', ogg]);
    const added = JSON.parse((await cli(['catalog', 'add', ogg, '--url', server.url, '--token', 'test-admin-token', '--json'])).stdout);
    expect(added.title).toBe('Ogg Song');
    const mp3 = join(dir, 'excerpt.mp3');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-ss', '6', '-t', '8', '-i', wav, '-b:a', '64k', mp3]);
    const out = JSON.parse((await cli(['identify', mp3, '--url', server.url, '--json'])).stdout);
    expect(out.match.title).toBe('Ogg Song');
    expect(Math.abs(out.match.offset_s - 6)).toBeLessThan(0.1);
  });

  it('fails with one clear line without a token, for a missing file, and for a format it cannot read', async () => {
    const noToken = await cli(['catalog', 'add', join(dir, 'track-0.wav'), '--url', server.url], { ROOMTONE_ADMIN_TOKEN: '' }).catch((e) => e);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no admin token/);
    const wrong = await cli(['catalog', 'add', join(dir, 'track-0.wav'), '--url', server.url, '--token', 'wrong']).catch((e) => e);
    expect(wrong.stderr).toMatch(/admin token is not valid \(unauthorized, HTTP 401\)/);
    const missing = await cli(['identify', join(dir, 'nope.wav'), '--url', server.url]).catch((e) => e);
    expect(missing.stderr).toMatch(/cannot read .*nope\.wav/);
    writeFileSync(join(dir, 'junk.flac'), 'not audio');
    const junk = await cli(['identify', join(dir, 'junk.flac'), '--url', server.url]).catch((e) => e);
    expect(junk.stderr).toMatch(/cannot decode .*junk\.flac/);
  });
});
