// Live and offline analysis against the real worker on workerd: the Node
// client library streams rendered instrument notes in real time, the CLI
// analyses files in Node, and POST /api/v1/analyze analyses the same files
// in workerd, which must give the same document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { analysisUrl, AnalysisStreamClient, AnalysisStreamError, streamToAnalysis } from '../../agent/analysis-stream-client.ts';
import { decodeWav } from '../../wasm/wav.ts';
import { hzToMidi } from '../../wasm/dsp/notes.ts';
import { scoreOnsets } from '../../bench/support/metrics.ts';
import { FIXTURE_DIR, type MidiNote } from '../fixtures/render.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(FIXTURE_DIR, 'notes.json'), 'utf8')) as Record<string, { notes: MidiNote[] }>;

let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer();
});
afterAll(async () => {
  await server?.stop();
});

function cli(args: string[]) {
  return run(process.execPath, [join(ROOT, 'agent/bin/roomtone.js'), ...args], { cwd: ROOT, timeout: 60_000 });
}

describe('live analysis over the network', () => {
  it('streams a rendered guitar phrase at real time and gets its notes and onsets back, to a watcher too', async () => {
    const file = 'guitar.wav';
    const wav = decodeWav(readFileSync(join(FIXTURE_DIR, file)));
    const url = analysisUrl(server.url, { id: `e2e-${Date.now()}` });
    const seen: number[] = [];
    const watcher = await AnalysisStreamClient.connect(url, { role: 'watcher', onResult: (r) => seen.push(r.seq) });
    const { results, stats, errors } = await streamToAnalysis(url, wav.samples, { sampleRate: wav.sampleRate, format: 's16' });
    expect(errors).toEqual([]);
    expect(stats.samples_in).toBe(wav.samples.length);
    expect(results.length).toBe(stats.results_sent);
    expect(seen).toEqual(results.map((r) => r.seq));
    for (const n of manifest[file].notes) {
      const body = results.filter((r) => r.t > n.start + 0.05 && r.t < n.start + n.duration - 0.03);
      const right = body.filter((r) => r.pitch && Math.abs(hzToMidi(r.pitch.hz) - n.note) < 0.5);
      expect(right.length / body.length, `MIDI ${n.note}`).toBeGreaterThan(0.9);
    }
    const onsets = results.flatMap((r) => r.onsets);
    const s = scoreOnsets(onsets, manifest[file].notes.map((n) => n.start), 0.02);
    expect(s.f).toBe(1);
    await watcher.close();
  });

  it('refuses a second source with a typed error', async () => {
    const url = analysisUrl(server.url, { id: `e2e-two-${Date.now()}` });
    const first = await AnalysisStreamClient.connect(url, { role: 'source', sampleRate: 48_000 });
    await expect(AnalysisStreamClient.connect(url, { role: 'source', sampleRate: 48_000 })).rejects.toMatchObject({ code: 'conflict', reason: 'source_taken' });
    await expect(AnalysisStreamClient.connect(url, { role: 'source', sampleRate: 48_000 })).rejects.toBeInstanceOf(AnalysisStreamError);
    expect(await first.ping()).toBeLessThan(1000);
    await first.close();
  });

  it('says why a room-owned stream cannot open for an unknown room', async () => {
    await expect(AnalysisStreamClient.connect(analysisUrl(server.url, { room: 'ZZZZZZ', name: 'mic' }), { role: 'watcher' })).rejects.toThrow(/no room with that code/);
  });
});

describe('offline analysis', () => {
  it('prints the same document from the CLI (Node) as POST /api/v1/analyze returns (workerd)', async () => {
    for (const file of ['piano.wav', 'marimba-run.wav']) {
      const path = join(FIXTURE_DIR, file);
      const { stdout } = await cli(['analyze', path, '--json']);
      const local = JSON.parse(stdout);
      const res = await fetch(`${server.url}/api/v1/analyze`, { method: 'POST', body: readFileSync(path), headers: { 'content-type': 'audio/wav' } });
      expect(res.status).toBe(200);
      const remote = await res.json();
      expect(remote).toEqual(local);
      expect(local.onsets.length).toBe(manifest[file].notes.length);
    }
  });

  it('prints a readable summary, and a clear error and exit code 2 for a file that is not WAV', async () => {
    const { stdout } = await cli(['analyze', join(FIXTURE_DIR, 'trumpet.wav')]);
    expect(stdout).toMatch(/22050 Hz, mono, 16-bit pcm/);
    expect(stdout).toMatch(/onsets \(6\)/);
    expect(stdout).toMatch(/ G3 /);
    const err = await cli(['analyze', join(FIXTURE_DIR, 'notes.json')]).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/notes\.json: not a WAV file/);
  });
});
