// The worker builds for deployment (`wrangler deploy --dry-run`) and its
// bundle fits the Workers size limit: 3 MB gzip-compressed on the free plan
// (10 MB on paid plans), https://developers.cloudflare.com/workers/platform/limits/.
// Built from a snapshot of the sources, like the test servers, so an edit in
// progress elsewhere in the tree cannot break the build half-way.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { snapshotWorkerSources } from '../support/local-server.ts';

const run = promisify(execFile);
const FREE_PLAN_GZIP_LIMIT = 3 * 1024 * 1024;

describe('deployment', () => {
  it('builds with wrangler deploy --dry-run into a bundle under the free plan limit of 3 MB gzip', async () => {
    const dir = snapshotWorkerSources();
    const out = mkdtempSync(join(tmpdir(), 'roomtone-bundle-'));
    const { stdout, stderr } = await run(process.execPath, [join(dir, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out], {
      cwd: dir,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
      timeout: 120_000,
    });
    expect(stdout + stderr).toMatch(/--dry-run: exiting now/);
    // Every Durable Object class of wrangler.toml is bound in the build.
    for (const cls of ['TransportSession', 'ClientLimiter', 'RoomRelay', 'Job', 'CatalogShard', 'MatchStream', 'LiveStreamRegistry', 'AnalysisStream']) {
      expect(stdout).toContain(`(${cls})`);
    }
    // What is uploaded: the script and its modules (wasm), not the source map.
    const files = readdirSync(out).filter((f) => /\.(js|mjs|wasm)$/.test(f));
    expect(files).toContain('index.js');
    expect(files.some((f) => f.endsWith('.wasm'))).toBe(true);
    const gzip = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(out, f)), { level: 9 }).byteLength, 0);
    console.log(`bundle: ${files.join(', ')}; ${(gzip / 1024).toFixed(0)} KiB gzip`);
    expect(gzip).toBeLessThanOrEqual(FREE_PLAN_GZIP_LIMIT);
  }, 150_000);
});
