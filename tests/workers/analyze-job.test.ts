import { describe, expect, it } from 'vitest';
import { api, sleep } from './helpers.ts';
import { encodeWav } from '../../wasm/wav.ts';

function tone(seconds: number, hz: number, rate = 22_050): ArrayBuffer {
  const x = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < x.length; i++) x[i] = 0.5 * Math.sin((2 * Math.PI * hz * i) / rate) * (i % rate < rate / 2 ? 1 : 0.2);
  return encodeWav(x, rate).slice().buffer as ArrayBuffer;
}

interface JobStatus {
  state: string;
  progress: number;
  stage: string | null;
  result_url: string | null;
  summary: { frames: number; onsets: number; duration_s: number } | null;
  events: Array<{ type: string; progress?: number; stage?: string }>;
}

describe('POST /api/v1/analyze as a job', () => {
  it('answers 202 with job links, reports real stages, and serves the same document the synchronous call returns', async () => {
    const wav = tone(12, 330);
    const sync = await (await api('/api/v1/analyze', { method: 'POST', body: wav })).json<{ frames: unknown[]; onsets: number[] }>();
    const res = await api('/api/v1/analyze?async=1', { method: 'POST', body: wav });
    expect(res.status).toBe(202);
    const job = await res.json<{ job_id: string; status_url: string; stream_url: string; result_url: string }>();
    expect(job.stream_url).toMatch(/^ws:\/\/.*\/api\/v1\/jobs\/.+\/stream$/);
    let status: JobStatus | null = null;
    for (let i = 0; i < 100; i++) {
      status = await (await api(new URL(job.status_url).pathname + '?after=0')).json<JobStatus>();
      if (status.state === 'completed' || status.state === 'error') break;
      await sleep(50);
    }
    expect(status!.state).toBe('completed');
    expect(status!.result_url).toBe(job.result_url);
    const stages = status!.events.filter((e) => e.type === 'progress').map((e) => e.stage);
    expect(stages[0]).toBe('decode');
    expect(stages).toContain('analyse');
    expect(stages.at(-1)).toBe('store');
    const progress = status!.events.filter((e) => e.type === 'progress').map((e) => e.progress!);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(status!.summary).toMatchObject({ frames: sync.frames.length, onsets: sync.onsets.length });
    const doc = await (await api(new URL(job.result_url).pathname)).json();
    expect(doc).toEqual(sync);
  });

  it('also starts a job for Prefer: respond-async, and still refuses a broken file at once', async () => {
    const res = await api('/api/v1/analyze', { method: 'POST', body: tone(1, 440), headers: { prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    const { status_url } = await res.json<{ status_url: string }>();
    // Let the background job finish inside the test, not after it.
    for (let i = 0; i < 100; i++) {
      const s = await (await api(new URL(status_url).pathname)).json<{ state: string }>();
      if (s.state === 'completed') break;
      await sleep(50);
    }
    const bad = await api('/api/v1/analyze?async=1', { method: 'POST', body: new Uint8Array([82, 73, 70, 70, 1, 2, 3]).buffer });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expect((await bad.json<{ error: { code: string } }>()).error.code).toMatch(/unsupported|bad_request/);
  });

  it('answers 404 for a result that does not exist', async () => {
    expect((await api('/api/v1/analyze/results/no-such-job-id-000')).status).toBe(404);
    expect((await api('/api/v1/analyze/results/x')).status).toBe(404);
  });
});
