import { describe, expect, it } from 'vitest';
import { env } from 'cloudflare:test';
import { api } from './helpers.ts';
import type { Env } from '../../src/worker/env.ts';
import { createJob } from '../../src/lib/jobs.ts';

const E = env as Env;

describe('the server-side job library', () => {
  it('creates a job whose publisher posts events that the status URL reports', async () => {
    const job = await createJob(E, { kind: 'test', origin: 'http://roomtone.test' });
    expect(job.stream_url).toBe(`ws://roomtone.test/api/v1/jobs/${job.job_id}/stream`);
    const first = await job.publisher.progress(10, 'decoding');
    expect(first.seq).toBe(1);
    const status = await (await api(`/api/v1/jobs/${job.job_id}?after=0`)).json<{ state: string; progress: number; events: unknown[] }>();
    expect(status.state).toBe('running');
    expect(status.progress).toBe(10);
    expect(status.events).toHaveLength(1);
  });
});
