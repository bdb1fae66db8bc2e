// The upload page in headless Chromium: a job's progress streamed live to a
// progress bar, its result and its failure; a WAV uploaded to the catalog and
// followed through its ingestion job.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { launchBrowser, screenshot, watchErrors } from '../support/browser.ts';
import { renderWavFile, tune } from '../support/audio.ts';
import { fluidsynthAvailable } from '../fixtures/render.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import type { CreatedJob, JobEventInput } from '../../src/protocol/index.ts';

const ADMIN = 'test-admin-token';
let server: LocalServer;
let browser: Browser;

beforeAll(async () => {
  await buildWeb({ quiet: true });
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser()]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function createJob(title: string): Promise<CreatedJob> {
  const res = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'test.browser', title }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as CreatedJob;
}

async function publish(job: CreatedJob, event: JobEventInput): Promise<void> {
  const res = await fetch(`${server.url}/api/v1/jobs/${job.job_id}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${job.publish_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  expect(res.status).toBe(200);
}

async function openPage(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await context.newPage();
  return { page, errors: watchErrors(page) };
}

const bar = (page: Page) => page.locator('#job-progress').evaluate((el) => (el as HTMLProgressElement).value);

describe('the upload page', () => {
  it("follows a job's stream live: the bar and stage move with each event, reach 100% and show the result", async () => {
    const job = await createJob('browser progress');
    const { page, errors } = await openPage();
    await page.goto(`${server.url}/upload?job=${job.job_id}`);
    await expect.poll(() => page.locator('#job-mode').textContent(), { timeout: 10_000 }).toBe('Live');
    await publish(job, { type: 'progress', progress: 25, stage: 'decoding' });
    await expect.poll(() => page.locator('#job-stage').textContent()).toBe('decoding');
    expect(await bar(page)).toBe(25);
    expect(await page.locator('#job-percent').textContent()).toBe('25%');
    await publish(job, { type: 'progress', progress: 70, stage: 'fingerprinting', message: '1200 landmarks so far' });
    await expect.poll(() => page.locator('#job-percent').textContent()).toBe('70%');
    expect(await page.locator('#job-message').textContent()).toBe('1200 landmarks so far');
    await screenshot(page, 'jobs-progress');
    await publish(job, { type: 'completed', result_url: `${server.url}/api/v1/catalog/tracks/42`, summary: { title: 'Browser Song', fingerprints: 1234 } });
    await expect.poll(() => page.locator('#job-percent').textContent()).toBe('100%');
    expect(await bar(page)).toBe(100);
    expect(await page.locator('#job-result').isVisible()).toBe(true);
    expect(await page.getByRole('link', { name: 'Result' }).getAttribute('href')).toBe(`${server.url}/api/v1/catalog/tracks/42`);
    expect(await page.locator('#job-summary').textContent()).toContain('fingerprints1234');
    expect(await page.locator('#job-mode').textContent()).toBe('Finished');
    await screenshot(page, 'jobs-completed');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it("shows a failed job's error and stage, and offers no retry when the job says it would not help", async () => {
    const job = await createJob('browser failure');
    await publish(job, { type: 'progress', progress: 40, stage: 'decoding' });
    const { page } = await openPage();
    await page.goto(`${server.url}/upload?job=${job.job_id}`);
    await expect.poll(() => page.locator('#job-percent').textContent(), { timeout: 10_000 }).toBe('40%');
    await publish(job, { type: 'error', message: 'the file is not audio', retryable: false, stage: 'decoding' });
    await expect.poll(() => page.locator('#job-error').textContent()).toBe('Failed during decoding: the file is not audio');
    expect(await page.locator('#job-retry').isHidden()).toBe(true);
    await screenshot(page, 'jobs-failed');
    await page.context().close();
  });

  it('says so when the admin token is wrong, and keeps the form filled in', async () => {
    if (!fluidsynthAvailable()) throw new Error('this test needs fluidsynth and fluid-soundfont-gm');
    const wav = renderWavFile('short-tune.wav', tune(3, 3), 0, 3);
    const { page } = await openPage();
    await page.goto(`${server.url}/upload`);
    await page.getByLabel('Recording (WAV)').setInputFiles(wav.path);
    expect(await page.getByLabel('Title').inputValue()).toBe('short tune');
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Upload and add' }).click();
    await expect.poll(() => page.locator('#upload-error').textContent(), { timeout: 10_000 }).toMatch(/^Upload failed: .*admin token/);
    expect(await page.getByLabel('Title').inputValue()).toBe('short tune');
    await page.context().close();
  });

  it('uploads a WAV to the catalog, follows its ingestion job to 100% and shows the track', async () => {
    if (!fluidsynthAvailable()) throw new Error('this test needs fluidsynth and fluid-soundfont-gm');
    const wav = renderWavFile('upload-tune.wav', tune(11, 8), 0, 8);
    const { page, errors } = await openPage();
    await page.goto(`${server.url}/upload`);
    await page.getByLabel('Recording (WAV)').setInputFiles(wav.path);
    await page.getByLabel('Title').fill('Uploaded From The Browser');
    await page.getByLabel('Artist').fill('Chromium');
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.getByRole('button', { name: 'Upload and add' }).click();
    await expect.poll(() => page.locator('#job-percent').textContent(), { timeout: 30_000 }).toBe('100%');
    expect(await page.locator('#job-error').textContent()).toBe('');
    expect(await page.locator('#job-result').isVisible()).toBe(true);
    const href = (await page.getByRole('link', { name: 'Result' }).getAttribute('href'))!;
    const track = (await (await fetch(href)).json()) as { title: string; artist: string; status: string; fingerprints: number };
    expect(track).toMatchObject({ title: 'Uploaded From The Browser', artist: 'Chromium', status: 'ready' });
    expect(track.fingerprints).toBeGreaterThan(100);
    expect(page.url()).toMatch(/\/upload\?job=job_/);
    await screenshot(page, 'jobs-upload-completed');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
