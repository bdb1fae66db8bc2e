import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalServer, type LocalServer } from '../../tests/support/local-server.ts';
import { startProxy, seededRandom, type Proxy } from '../../bench/support/proxy.ts';
import { JobNotFoundError, JobWatcher, streamUrlFor, type WatchMode } from './job-watcher.ts';
import type { CreatedJob, JobEvent } from '../protocol/index.ts';

// The watcher against the real worker on workerd, with a misbehaving network
// in front of it where a test needs one.

let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer({ vars: { JOBS_PER_MIN: '100000', JOB_STREAMS_PER_MIN: '100000' } });
});
afterAll(async () => {
  await server?.stop();
});

async function createJob(body: Record<string, unknown> = {}): Promise<CreatedJob> {
  const res = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'test', ...body }),
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.json() as Promise<CreatedJob>;
}

async function publish(job: CreatedJob, event: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/api/v1/jobs/${job.job_id}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  if (!res.ok) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
}

function progress(job: CreatedJob, p: number) {
  return publish(job, { type: 'progress', progress: p, stage: `stage ${Math.floor(p / 10)}` });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function record(w: JobWatcher) {
  const events: JobEvent[] = [];
  const modes: WatchMode[] = [];
  w.on('event', (e) => events.push(e));
  w.on('mode', (m) => modes.push(m));
  return { events, modes };
}

const fast = { backoff: { minDelayMs: 50, maxDelayMs: 400 } };

describe('JobWatcher', () => {
  it('derives the stream URL from the status URL', () => {
    expect(streamUrlFor('https://edge.example/api/v1/jobs/job_x')).toBe('wss://edge.example/api/v1/jobs/job_x/stream');
    expect(streamUrlFor('http://127.0.0.1:8787/api/v1/jobs/job_x/')).toBe('ws://127.0.0.1:8787/api/v1/jobs/job_x/stream');
  });

  it('delivers every event once, in order, and resolves with the terminal event', async () => {
    const job = await createJob();
    await progress(job, 5); // published before the watcher starts: comes from the replay
    const w = new JobWatcher({ statusUrl: job.status_url, ...fast });
    const { events, modes } = record(w);
    w.start();
    await until(() => w.mode === 'streaming', 'streaming');
    for (let p = 10; p <= 50; p += 10) await progress(job, p);
    await publish(job, { type: 'completed', result_url: 'https://example.com/result' });
    const last = await w.done;
    expect(last).toMatchObject({ type: 'completed', seq: 7, result_url: 'https://example.com/result' });
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(w.stats).toMatchObject({ delivered: 7, duplicates: 0, gaps: 0, connects: 1 });
    expect(modes).toEqual(['connecting', 'streaming', 'done']);
  });

  it('reconnects after a cut and resumes from the last sequence, losing and repeating nothing', async () => {
    const job = await createJob();
    const proxy = await startProxy({ target: server.url });
    try {
      const w = new JobWatcher({ statusUrl: job.status_url, streamUrl: streamUrlFor(`${proxy.url}/api/v1/jobs/${job.job_id}`), ...fast });
      const { events } = record(w);
      w.start();
      await until(() => w.mode === 'streaming' || w.stats.connects > 0, 'a connection');
      for (let round = 0; round < 4; round++) {
        await progress(job, round * 20 + 1);
        await until(() => w.lastSeq === round * 2 + 1, `event ${round * 2 + 1}`);
        proxy.cutAll();
        await progress(job, round * 20 + 2); // published while the watcher is away
      }
      await publish(job, { type: 'completed' });
      await w.done;
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(w.stats.connects).toBeGreaterThanOrEqual(5);
      expect(w.stats.duplicates).toBe(0);
      expect(proxy.stats.cuts).toBeGreaterThanOrEqual(4);
    } finally {
      await proxy.close();
    }
  });

  it('falls back to polling when the socket keeps failing, and returns to the socket when it comes back', async () => {
    const job = await createJob();
    const proxy = await startProxy({ target: server.url });
    proxy.refuse(true);
    try {
      const w = new JobWatcher({
        statusUrl: job.status_url,
        streamUrl: streamUrlFor(`${proxy.url}/api/v1/jobs/${job.job_id}`),
        failuresBeforePolling: 2,
        pollIntervalMs: 100,
        socketRetryMs: 300,
        ...fast,
      });
      const { events, modes } = record(w);
      w.start();
      await until(() => w.mode === 'polling', 'polling');
      await progress(job, 10);
      await progress(job, 20);
      await until(() => w.lastSeq === 2, 'events while polling');
      expect(w.stats.polls).toBeGreaterThan(0);
      proxy.refuse(false);
      await progress(job, 30); // gives the probing socket something to say
      await until(() => w.mode === 'streaming', 'back on the socket');
      const pollsAtSwitch = w.stats.polls;
      await progress(job, 40);
      await publish(job, { type: 'completed' });
      await w.done;
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(w.stats.polls).toBe(pollsAtSwitch);
      expect(modes).toEqual(['connecting', 'polling', 'streaming', 'done']);
    } finally {
      await proxy.close();
    }
  });

  it('detects a dead link by silence alone and recovers the events sent into it', async () => {
    const job = await createJob({ heartbeat_ms: 200 });
    const proxy = await startProxy({ target: server.url });
    try {
      const w = new JobWatcher({ statusUrl: job.status_url, streamUrl: streamUrlFor(`${proxy.url}/api/v1/jobs/${job.job_id}`), ...fast });
      const warnings: string[] = [];
      w.on('warning', (x) => warnings.push(x.code));
      const { events } = record(w);
      w.start();
      await progress(job, 10);
      await until(() => w.lastSeq === 1, 'first event');
      await sleep(300);
      proxy.blackhole(true);
      await progress(job, 20);
      await until(() => warnings.includes('silent'), 'the silence to be noticed', 5000);
      proxy.blackhole(false);
      await until(() => w.lastSeq === 2, 'the event sent into the dead link');
      await publish(job, { type: 'completed' });
      await w.done;
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    } finally {
      await proxy.close();
    }
  });

  it('resolves at once with the final state when the job had already ended', async () => {
    const job = await createJob();
    await progress(job, 50);
    await publish(job, { type: 'error', message: 'disk full', retryable: true, stage: 'write' });
    const w = new JobWatcher({ statusUrl: job.status_url, ...fast });
    const { events } = record(w);
    w.start();
    const last = await w.done;
    expect(last).toMatchObject({ type: 'error', seq: 2, message: 'disk full', retryable: true, stage: 'write' });
    expect(events.map((e) => e.type)).toEqual(['progress', 'error']);

    // A watcher restarted from saved state that had seen everything still learns how it ended.
    const resumed = new JobWatcher({ statusUrl: job.status_url, after: 2, ...fast });
    const again = record(resumed);
    resumed.start();
    expect(await resumed.done).toMatchObject({ type: 'error', seq: 2, message: 'disk full' });
    expect(again.events).toEqual([]);
  });

  it('rejects with JobNotFoundError for a job that does not exist', async () => {
    const w = new JobWatcher({ statusUrl: `${server.url}/api/v1/jobs/job_${'Z'.repeat(24)}`, failuresBeforePolling: 1, ...fast }).start();
    await expect(w.done).rejects.toBeInstanceOf(JobNotFoundError);
    expect(w.mode).toBe('failed');
  });

  it('stops when asked, closing its socket', async () => {
    const job = await createJob();
    const w = new JobWatcher({ statusUrl: job.status_url, ...fast }).start();
    await progress(job, 1);
    await until(() => w.lastSeq === 1, 'an event');
    w.stop();
    await expect(w.done).rejects.toThrow('stopped');
    expect(w.mode).toBe('stopped');
    const watchers = async () => ((await (await fetch(job.status_url)).json()) as { watchers: number }).watchers;
    const deadline = Date.now() + 5000;
    while ((await watchers()) !== 0) {
      if (Date.now() > deadline) throw new Error('the server still counts the stopped watcher');
      await sleep(50);
    }
  });
});
