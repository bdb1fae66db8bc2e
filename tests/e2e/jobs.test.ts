import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import type { CreatedJob, JobEvent } from '../../src/protocol/index.ts';

// `roomtone job watch` as a user runs it: a real process against the real
// worker on workerd, fed by events published over HTTP.

const ROOT = resolve(import.meta.dirname, '../..');
let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer({ vars: { JOBS_PER_MIN: '100000', JOB_STREAMS_PER_MIN: '100000' } });
});
afterAll(async () => {
  await server?.stop();
});

async function createJob(): Promise<CreatedJob> {
  const res = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'e2e', title: 'cli test' }),
  });
  expect(res.status).toBe(201);
  return res.json() as Promise<CreatedJob>;
}

async function publish(job: CreatedJob, event: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/api/v1/jobs/${job.job_id}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  expect(res.status).toBe(200);
}

interface Run {
  lines: () => string[];
  stderr: () => string;
  exit: Promise<{ code: number | null; ms: number }>;
}

function runCli(args: string[]): Run {
  const child = spawn(process.execPath, [resolve(ROOT, 'agent/bin/roomtone.js'), ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let endedAt = 0;
  const exit = new Promise<{ code: number | null; ms: number }>((res) => {
    child.once('exit', (code) => {
      endedAt = Date.now();
      res({ code, ms: endedAt });
    });
  });
  return { lines: () => out.split('\n').filter(Boolean), stderr: () => err, exit };
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('roomtone job watch', () => {
  it('prints every event once as JSON lines and exits 0 when the job completes', async () => {
    const job = await createJob();
    await publish(job, { type: 'progress', progress: 10, stage: 'decoding' });
    const run = runCli(['job', 'watch', job.job_id, '--url', server.url, '--json']);
    await until(() => run.lines().length >= 1, 'the replayed event');
    await publish(job, { type: 'progress', progress: 60, stage: 'fingerprinting', message: 'track 2 of 3' });
    await publish(job, { type: 'completed', result_url: 'https://example.com/catalog', summary: { tracks: 3 } });
    const done = Date.now();
    const { code, ms } = await run.exit;
    expect(code).toBe(0);
    const events = run.lines().map((l) => JSON.parse(l) as JobEvent);
    expect(events.map((e) => [e.seq, e.type])).toEqual([[1, 'progress'], [2, 'progress'], [3, 'completed']]);
    expect(events[1]).toMatchObject({ stage: 'fingerprinting', message: 'track 2 of 3', progress: 60 });
    expect(events[2]).toMatchObject({ result_url: 'https://example.com/catalog', summary: { tracks: 3 } });
    expect(ms - done).toBeLessThan(1500); // it exits when the job ends, not when the socket finally closes
  });

  it('takes the status URL in place of an id, shows progress without a TTY, and exits 1 when the job fails', async () => {
    const job = await createJob();
    const run = runCli(['job', 'watch', job.status_url]);
    await new Promise((r) => setTimeout(r, 300));
    await publish(job, { type: 'progress', progress: 42, stage: 'analysis', message: 'minute 3' });
    await until(() => run.stderr().includes('42% analysis - minute 3'), 'a progress line');
    await publish(job, { type: 'error', message: 'decoder gave up', retryable: true, stage: 'analysis' });
    const { code } = await run.exit;
    expect(code).toBe(1);
    expect(run.lines().join('\n')).toContain('failed in analysis: decoder gave up (retryable)');
  });

  it('exits 3 for a job that does not exist and 2 for something that is not a job id', async () => {
    const missing = runCli(['job', 'watch', `job_${'Q'.repeat(24)}`, '--url', server.url]);
    expect((await missing.exit).code).toBe(3);
    expect(missing.stderr()).toMatch(/no such job/);
    const bad = runCli(['job', 'watch', 'nonsense', '--url', server.url]);
    expect((await bad.exit).code).toBe(2);
    expect(bad.stderr()).toMatch(/not a job id/);
  });
});
