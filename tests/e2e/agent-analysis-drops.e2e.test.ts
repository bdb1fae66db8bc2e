// `roomtone agent --analyze` across network faults: the agent process talks
// to the server through a proxy that cuts every connection, then goes silent
// (a dead link that never closes); a watcher connected directly sees the
// stream's results flow again after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { until } from '../support/until.ts';
import { startProxy, type Proxy } from '../../bench/support/proxy.ts';
import { encodeWav } from '../../wasm/wav.ts';
import { AnalysisStreamClient, analysisUrl, type AnalysisResult } from '../../agent/analysis-stream-client.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

let server: LocalServer;
let proxy: Proxy;
beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startProxy({ target: server.url });
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

describe('the agent keeps analysing across network drops', () => {
  it('resumes the analysis stream after every connection is cut and after the link goes silent', async () => {
    const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string; control_token: string };
    const sr = 22_050;
    // Longer than the test: a WAV source stops at its end.
    const tone = new Float32Array(sr * 120);
    for (let i = 0; i < tone.length; i++) tone[i] = 0.5 * Math.sin((2 * Math.PI * 220 * i) / sr);
    const file = join(mkdtempSync(join(tmpdir(), 'roomtone-drops-')), 'a3.wav');
    writeFileSync(file, encodeWav(tone, sr));

    const results: AnalysisResult[] = [];
    const watcher = await AnalysisStreamClient.connect(analysisUrl(server.url, { room: room.code, name: 'agent' }), { role: 'watcher', onResult: (r) => results.push(r) });
    let out = '';
    const child: ChildProcess = spawn(process.execPath, [`${ROOT}agent/bin/roomtone.js`, 'agent', '--url', proxy.url, '--room', room.code, '--source', `wav:${file}`, '--analyze'], {
      cwd: ROOT,
      env: { ...process.env, ROOMTONE_TOKEN: room.control_token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const output = () => out;
    const count = (re: RegExp) => (out.match(re) ?? []).length;
    const flowingAfter = (seq: number, n: number) => results.filter((r) => r.seq > seq && r.pitch?.note === 'A3').length >= n;
    try {
      await until(() => flowingAfter(0, 20), 20_000, 'the first results', output);

      // A clean cut: the socket closes and the agent reconnects.
      let seq = results.at(-1)!.seq;
      proxy.cutAll();
      await until(() => count(/analysis stream dropped/g) >= 1, 10_000, 'the agent to notice the cut', output);
      await until(() => count(/analysis stream resumed/g) >= 1, 20_000, 'the agent to resume', output);
      await until(() => flowingAfter(seq, 20), 20_000, 'results after the cut', output);

      // A dead link: nothing closes, nothing arrives, and only the agent's
      // watchdog can tell. The agent's giving up does not cross it either, so
      // the server still holds the old socket as the source when the agent
      // comes back: only its resume token lets it take the stream back.
      seq = results.at(-1)!.seq;
      proxy.blackhole(true);
      await until(() => count(/analysis stream dropped/g) >= 2, 20_000, 'the agent to give up on the silent link', output);
      expect(out).toMatch(/analysis stream dropped \(no answer for/);
      await until(() => proxy.stats.orphaned >= 1, 5_000, 'the dropped socket to be left open on the server side', output);
      expect((await watcher.stats()).source_connected).toBe(true);
      proxy.blackhole(false);
      await until(() => count(/analysis stream resumed/g) >= 2, 30_000, 'the agent to resume after the silent link', output);
      await until(() => flowingAfter(seq, 20), 20_000, 'results after the silent link', output);
      expect(out).not.toMatch(/source_taken/);

      const stats = await watcher.stats();
      expect(stats.source_connected).toBe(true);
      // Results kept their order across both drops.
      for (let i = 1; i < results.length; i++) expect(results[i].seq).toBeGreaterThan(results[i - 1].seq);
    } finally {
      child.kill('SIGINT');
      await exited;
      await watcher.close();
    }
    expect(out).not.toContain(room.control_token);
  }, 150_000);
});
