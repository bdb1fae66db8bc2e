// The pages in headless Chromium against the real worker: creating and
// joining rooms, two screens sharing one playhead, controls, what people see
// when a room is missing or the connection drops, and the upload page
// following a job to its end. (The microphone pages are in
// browser-microphone.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { launchBrowser, screenshot, watchErrors } from '../support/browser.ts';
import { renderWavFile, tune } from '../support/audio.ts';
import { fluidsynthAvailable } from '../fixtures/render.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import type { CreatedJob, JobEventInput } from '../../src/protocol/index.ts';
import { RoomAgent } from '../../agent/room-agent.ts';
import { DeviceTransport } from '../../agent/transport-driver.ts';
import { SimDeviceClock } from '../../agent/sources/sim.ts';

interface DebugPosition {
  seconds: number;
  beat_pos: number;
  bar: number;
  status: string;
  playing: boolean;
}

let server: LocalServer;
let browser: Browser;
const pageErrors = new WeakMap<Page, string[]>();

const DESKTOP = { width: 1000, height: 900 };
const PHONE = { width: 390, height: 844 };

async function newPage(viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({ viewport, hasTouch: viewport === PHONE });
  const page = await context.newPage();
  pageErrors.set(page, watchErrors(page));
  return page;
}

/** Console errors and exceptions, except the 404s a page meets on purpose (asking whether a room exists). */
function errorsOf(page: Page): string[] {
  return (pageErrors.get(page) ?? []).filter((e) => !/status of 404/.test(e));
}

async function waitJoined(page: Page, role: 'viewer' | 'controller'): Promise<void> {
  await page.waitForFunction(
    (r) => {
      const h = (window as unknown as { roomtone: { state: string; role: string; sync: { samples: number } | null } }).roomtone;
      return h.state === 'open' && h.role === r && (h.sync?.samples ?? 0) >= 8;
    },
    role,
    { timeout: 15_000 },
  );
}

/** Both pages' playheads for one instant of the shared wall clock (both pages run on this machine's clock). */
async function positionsAt(pages: Page[], local: number): Promise<DebugPosition[]> {
  return Promise.all(
    pages.map((p) => p.evaluate((l) => (window as unknown as { roomtone: { position(l: number): DebugPosition } }).roomtone.position(l), local)),
  );
}

/** A room made over REST (the home page's own flow has its own test), with its controller link as the page builds it. */
async function createRoom(bpm = 100): Promise<{ code: string; control: string }> {
  const res = await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bpm }) });
  const room = (await res.json()) as { code: string; control_token: string; page_url: string };
  return { code: room.code, control: `${room.page_url}#control=${encodeURIComponent(room.control_token)}` };
}

const ADMIN = 'test-admin-token';

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
  const page = await newPage();
  return { page, errors: pageErrors.get(page)! };
}

const bar = (page: Page) => page.locator('#job-progress').evaluate((el) => (el as HTMLProgressElement).value);

beforeAll(async () => {
  await buildWeb({ quiet: true });
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser()]);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('the home page', () => {
  it('creates a room and shows its code large, a viewer link to copy and a controller link', async () => {
    const page = await newPage();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await page.goto(`${server.url}/`);
    await page.getByLabel('Tempo (BPM)').fill('96');
    await page.getByRole('button', { name: 'Create room' }).click();
    const code = page.locator('#created-code');
    await expect.poll(() => code.textContent()).toMatch(/^[2-9A-HJKMNP-Z]{6}$/);
    const text = (await code.textContent())!;
    const fontPx = await code.evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    expect(fontPx).toBeGreaterThanOrEqual(48);
    expect(await page.locator('#control-link').inputValue()).toMatch(new RegExp(`/r/${text}#control=.+`));
    await page.getByRole('button', { name: 'Copy viewer link' }).click();
    await expect.poll(() => page.locator('#copy-status').textContent()).toContain(`/r/${text}`);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`${server.url}/r/${text}`);
    await screenshot(page, 'home-created');
    // From the keyboard: Tab from the copy button to the controller link, Enter opens the room with its controls.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('copy-link');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('open-control');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.url}/r/${text}`);
    await waitJoined(page, 'controller');
    expect(await page.locator('#controls').isVisible()).toBe(true);
    expect(await page.locator('#bpm').textContent()).toBe('96');
    expect(errorsOf(page)).toEqual([]);
    await page.context().close();
  });

  it('joins a room by a code typed in lower case with a dash, and explains a code that names no room', async () => {
    const { code } = await createRoom();
    const page = await newPage();
    await page.goto(`${server.url}/`);
    await page.getByLabel('Room code').fill('ZZZ-ZZZ');
    await page.getByRole('button', { name: 'Join' }).click();
    await expect.poll(() => page.locator('#join-error').textContent()).toContain('No room ZZZZZZ');
    await page.getByLabel('Room code').fill('abc');
    await page.getByLabel('Room code').press('Enter');
    await expect.poll(() => page.locator('#join-error').textContent()).toContain('not a room code');
    await screenshot(page, 'home-join-error');
    await page.getByLabel('Room code').fill(`${code.slice(0, 3).toLowerCase()}-${code.slice(3).toLowerCase()}`);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.waitForURL(`${server.url}/r/${code}`);
    await waitJoined(page, 'viewer');
    expect(await page.locator('#room-code').textContent()).toBe(code);
    expect(await page.locator('#controls').isHidden()).toBe(true);
    await page.context().close();
  });
});

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
    expect(await page.locator('#job-failed-hint').textContent()).toBe('Trying again will not help: check the input.');
    expect(await page.locator('#job-mode').textContent()).toBe('Failed');
    await screenshot(page, 'jobs-failed');
    // A retryable failure says so; a watched job has no upload to resend, so no button.
    const again = await createJob('browser retryable failure');
    await page.goto(`${server.url}/upload?job=${again.job_id}`);
    await expect.poll(() => page.locator('#job-mode').textContent(), { timeout: 10_000 }).toBe('Live');
    await publish(again, { type: 'error', message: 'the catalog shard was busy', retryable: true, stage: 'storing' });
    await expect.poll(() => page.locator('#job-error').textContent()).toBe('Failed during storing: the catalog shard was busy');
    expect(await page.locator('#job-failed-hint').textContent()).toBe('The server says trying again may work: start the job again.');
    await page.context().close();
  });

  it('says so when the admin token is wrong, and keeps the form filled in', async () => {
    if (!fluidsynthAvailable()) throw new Error('this test needs fluidsynth and fluid-soundfont-gm');
    const wav = renderWavFile('short-tune.wav', tune(3, 3), 0, 3);
    const { page } = await openPage();
    await page.goto(`${server.url}/upload`);
    await page.getByLabel('Recording to add (WAV)').setInputFiles(wav.path);
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
    await page.getByLabel('Recording to add (WAV)').setInputFiles(wav.path);
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

  it('analyses a WAV file: the upload bar reaches 100% and the notes and onsets are listed', async () => {
    if (!fluidsynthAvailable()) throw new Error('this test needs fluidsynth and fluid-soundfont-gm');
    // Three A4s then a C5 on a flute.
    const notes = [0.2, 0.9, 1.6, 2.3].map((start, i) => ({ note: i < 3 ? 69 : 72, start, duration: 0.5, velocity: 100 }));
    const wav = renderWavFile('flute-notes.wav', notes, 73, 3.2);
    const { page, errors } = await openPage();
    await page.goto(`${server.url}/upload`);
    await page.getByLabel('Recording to analyse (WAV)').setInputFiles(wav.path);
    await page.getByRole('button', { name: 'Analyse', exact: true }).click();
    await expect.poll(() => page.locator('#analyse-stage').textContent(), { timeout: 20_000 }).toBe('Done');
    expect(await page.locator('#analyse-percent').textContent()).toBe('100%');
    const found = await page.locator('#analyse-notes strong').allTextContents();
    expect(found).toEqual(['A4', 'A4', 'A4', 'C5']);
    expect(Number(await page.locator('#analyse-onsets').textContent())).toBeGreaterThanOrEqual(3);
    expect(await page.locator('#analyse-length').textContent()).toMatch(/^3\.\d\d s$/);
    await screenshot(page, 'upload-analysed');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});

describe('the room page', () => {
  it('shows one playhead on two screens: play, stop, seek and tempo from one appear on both, within 20 ms', async () => {
    const { code, control } = await createRoom(100);
    const ctl = await newPage();
    const viewer = await newPage(PHONE);
    await Promise.all([ctl.goto(control), viewer.goto(`${server.url}/r/${code}`)]);
    await Promise.all([waitJoined(ctl, 'controller'), waitJoined(viewer, 'viewer')]);
    // The token moved out of the address bar, so what is on screen is a viewer link.
    expect(ctl.url()).toBe(`${server.url}/r/${code}`);
    expect(await ctl.locator('#controls').isVisible()).toBe(true);
    expect(await viewer.locator('#controls').isHidden()).toBe(true);
    expect(await viewer.locator('#time').textContent()).toBe('00:00.000');
    // Anyone in the room can show the code large and copy the viewer link (never the token).
    await viewer.getByText('Invite others').click();
    expect(await viewer.locator('#share-code').textContent()).toBe(code);
    expect(await viewer.locator('#share-link').inputValue()).toBe(`${server.url}/r/${code}`);
    await screenshot(viewer, 'room-viewer-share');
    await viewer.getByText('Invite others').click();

    // Space on the page toggles play.
    await ctl.locator('body').press('Space');
    await viewer.waitForFunction(() => document.getElementById('state')?.textContent === 'Playing', null, { timeout: 5000 });
    await viewer.waitForTimeout(700);

    // Both playheads move on screen…
    const [t1, v1] = await Promise.all([ctl.locator('#time').textContent(), viewer.locator('#time').textContent()]);
    expect(t1).not.toBe('00:00.000');
    expect(v1).not.toBe('00:00.000');
    // …and at the same instant they agree.
    let worst = 0;
    for (let i = 0; i < 10; i++) {
      const [a, b] = await positionsAt([ctl, viewer], Date.now());
      expect(a.playing && b.playing).toBe(true);
      expect(a.seconds).toBeGreaterThan(0.5);
      worst = Math.max(worst, Math.abs(a.seconds - b.seconds) * 1000);
      await viewer.waitForTimeout(37);
    }
    console.log(`browser playheads: worst disagreement over 10 instants ${worst.toFixed(3)} ms`);
    expect(worst).toBeLessThan(20);

    // What each page drew is its own model at the instant it drew it.
    const drawn = await viewer.evaluate(() => {
      const h = (window as unknown as { roomtone: { drawn: { local: number; seconds: number } | null; position(l: number): { seconds: number } } }).roomtone;
      const d = h.drawn!;
      return { drawn: d.seconds, model: h.position(d.local).seconds };
    });
    expect(drawn.drawn).toBeCloseTo(drawn.model, 9);
    await Promise.all([screenshot(ctl, 'room-controller-playing'), screenshot(viewer, 'room-viewer-playing')]);

    // Stop with the button: both return to zero.
    await ctl.getByRole('button', { name: /^Stop/ }).click();
    for (const p of [ctl, viewer]) {
      await p.waitForFunction(() => document.getElementById('state')?.textContent === 'Stopped' && document.getElementById('time')?.textContent === '00:00.000', null, { timeout: 5000 });
    }

    // Seek to bar 9 with the form: at 100 BPM in 4/4 that is 32 beats = 19.2 s.
    await ctl.getByLabel('Go to bar').fill('9');
    await ctl.getByRole('button', { name: 'Seek' }).click();
    for (const p of [ctl, viewer]) {
      await p.waitForFunction(() => document.getElementById('barbeat')?.textContent === '9.1' && document.getElementById('time')?.textContent === '00:19.200', null, { timeout: 5000 });
    }

    // Keyboard: → moves one bar on, ↑ raises the tempo by one.
    await ctl.locator('body').press('ArrowRight');
    await viewer.waitForFunction(() => document.getElementById('barbeat')?.textContent === '10.1', null, { timeout: 5000 });
    await ctl.locator('body').press('ArrowUp');
    await viewer.waitForFunction(() => document.getElementById('bpm')?.textContent === '101', null, { timeout: 5000 });
    await ctl.getByLabel('Tempo', { exact: true }).fill('140');
    await ctl.getByLabel('Tempo', { exact: true }).press('Enter');
    await viewer.waitForFunction(() => document.getElementById('bpm')?.textContent === '140', null, { timeout: 5000 });
    const [a, b] = await positionsAt([ctl, viewer], Date.now());
    expect(a.bar).toBe(10);
    expect(b.bar).toBe(10);
    // Out of the tempo field (keys typed in a field stay in it): ← goes back a bar, Shift+→ on four, Home stops.
    await ctl.getByLabel('Tempo', { exact: true }).blur();
    await ctl.locator('body').press('ArrowLeft');
    await viewer.waitForFunction(() => document.getElementById('barbeat')?.textContent === '9.1', null, { timeout: 5000 });
    await ctl.locator('body').press('Shift+ArrowRight');
    await viewer.waitForFunction(() => document.getElementById('barbeat')?.textContent === '13.1', null, { timeout: 5000 });
    await screenshot(viewer, 'room-viewer-after-seek');
    await ctl.locator('body').press('Home');
    await viewer.waitForFunction(() => document.getElementById('time')?.textContent === '00:00.000', null, { timeout: 5000 });
    expect([...errorsOf(ctl), ...errorsOf(viewer)]).toEqual([]);
    await Promise.all([ctl.context().close(), viewer.context().close()]);
  });

  it('flashes the beat light on the same beat on both screens', async () => {
    const { code, control } = await createRoom(240);
    const ctl = await newPage();
    const viewer = await newPage();
    await Promise.all([ctl.goto(control), viewer.goto(`${server.url}/r/${code}`)]);
    await Promise.all([waitJoined(ctl, 'controller'), waitJoined(viewer, 'viewer')]);
    await ctl.getByRole('button', { name: /Start on next bar/ }).click();
    await viewer.waitForFunction(() => document.getElementById('state')?.textContent === 'Playing', null, { timeout: 5000 });
    // Record, on each screen, the instant each flash first appears, for 1.2 s (four beats and a bit at 240 BPM).
    const onsets = await Promise.all(
      [ctl, viewer].map((p) =>
        p.evaluate(
          () =>
            new Promise<number[]>((resolve) => {
              const h = (window as unknown as { roomtone: { drawn: { local: number } } }).roomtone;
              const beats = document.getElementById('beats')!;
              const times: number[] = [];
              let lit = false;
              const obs = new MutationObserver(() => {
                const now = beats.querySelector('.flash') !== null;
                if (now && !lit) times.push(h.drawn.local);
                lit = now;
              });
              obs.observe(beats, { subtree: true, attributes: true, attributeFilter: ['class'] });
              setTimeout(() => {
                obs.disconnect();
                resolve(times);
              }, 1200);
            }),
        ),
      ),
    );
    const [a, b] = onsets;
    // Each screen shows a flash at its first frame after the beat, so two
    // screens differ by up to a frame; a busy machine may drop a frame now and
    // then, so the typical (median) difference is what must be small.
    const diffs = a.map((t) => Math.min(...b.map((u) => Math.abs(t - u)))).filter((d) => d < 125).sort((x, y) => x - y);
    const median = diffs[Math.floor(diffs.length / 2)];
    console.log(`beat flashes: ${a.length} and ${b.length} in 1.2 s, ${diffs.length} paired, onset differences ${diffs.map((d) => d.toFixed(1)).join(', ')} ms`);
    expect(diffs.length).toBeGreaterThanOrEqual(3);
    expect(median).toBeLessThan(20);
    // Flashes come a beat apart (250 ms at 240 BPM): most intervals within a couple of frames of it.
    const intervals = b.slice(1).map((t, i) => t - b[i]);
    expect(intervals.filter((d) => Math.abs(d - 250) < 40).length).toBeGreaterThanOrEqual(Math.max(2, intervals.length - 1));
    await viewer.waitForFunction(() => document.querySelector('#beats span.flash') !== null, null, { timeout: 2000, polling: 'raf' });
    await screenshot(viewer, 'room-viewer-beat-flash');
    await Promise.all([ctl.context().close(), viewer.context().close()]);
  });

  it('shows when an agent drives the room, forwards play to it, and shows when it leaves', async () => {
    const { code, control } = await createRoom(100);
    const page = await newPage();
    await page.goto(control);
    await waitJoined(page, 'controller');
    expect(await page.locator('#agent').textContent()).toBe('None: the room keeps time');
    const room = new URL(control);
    const agent = new RoomAgent({
      url: server.url,
      code,
      token: decodeURIComponent(room.hash.replace('#control=', '')),
      driver: new DeviceTransport(new SimDeviceClock({ sampleRate: 48_000, bufferSize: 256, driftPpm: 0, jitterMs: 0 })),
    });
    await agent.start();
    try {
      await expect.poll(() => page.locator('#agent').textContent(), { timeout: 10_000 }).toBe('Connected: it drives the clock');
      await page.locator('body').press('Space');
      await page.waitForFunction(() => document.getElementById('state')?.textContent === 'Playing', null, { timeout: 10_000 });
      expect(agent.driver.state().status).toBe('playing');
      await screenshot(page, 'room-with-agent');
    } finally {
      await agent.stop();
    }
    await expect.poll(() => page.locator('#agent').textContent(), { timeout: 10_000 }).toBe('None: the room keeps time');
    await page.context().close();
  });

  it('says so when the room does not exist or the address has no code', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/r/ZZZZZZ`);
    await expect.poll(() => page.locator('#banner-text').textContent(), { timeout: 15_000 }).toContain('There is no room ZZZZZZ');
    expect(await page.locator('#conn').textContent()).toBe('No such room');
    expect(await page.getByRole('link', { name: 'Back to the home page' }).isVisible()).toBe(true);
    await screenshot(page, 'room-not-found');
    await page.goto(`${server.url}/r/hello!`);
    await expect.poll(() => page.locator('#banner-text').textContent()).toContain('no valid room code');
    await page.context().close();
  });

  it('tells viewers when their room expires, and shows nothing else', async () => {
    const res = await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idle_ttl_s: 4 }) });
    const { code } = (await res.json()) as { code: string };
    const page = await newPage();
    await page.goto(`${server.url}/r/${code}`);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 5000 }).toBe('Live');
    await expect.poll(() => page.locator('#banner-text').textContent(), { timeout: 15_000 }).toMatch(/^This room has expired \(no activity for 4 s\)/);
    expect(await page.locator('#conn').textContent()).toBe('Room expired');
    expect(await page.locator('main').isHidden()).toBe(true);
    expect(await page.getByRole('link', { name: 'Back to the home page' }).isVisible()).toBe(true);
    await screenshot(page, 'room-expired');
    await page.context().close();
  });

  it('falls back to viewing, and says why, when the control link is wrong', async () => {
    const { code } = await createRoom();
    const page = await newPage();
    await page.goto(`${server.url}/r/${code}#control=not-the-token`);
    await waitJoined(page, 'viewer');
    expect(await page.locator('#banner-text').textContent()).toContain('control link was not accepted');
    expect(await page.locator('#banner').isVisible()).toBe(true);
    expect(await page.locator('#controls').isHidden()).toBe(true);
    await page.context().close();
  });

  it('shows the dropped connection and reconnects by itself when the server comes back', async () => {
    const { code, control } = await createRoom(100);
    const page = await newPage();
    await page.goto(control);
    await waitJoined(page, 'controller');
    await page.locator('body').press('Space');
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'Playing');
    const { port, persistTo } = server;
    await server.stop();
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('Reconnecting…');
    expect(await page.locator('#banner-text').textContent()).toContain('Connection lost');
    expect(await page.locator('#banner').isVisible()).toBe(true);
    // The playhead keeps running on its last known line.
    const before = (await page.evaluate(() => (window as unknown as { roomtone: { drawn: { seconds: number } } }).roomtone.drawn.seconds));
    await page.waitForTimeout(300);
    const after = (await page.evaluate(() => (window as unknown as { roomtone: { drawn: { seconds: number } } }).roomtone.drawn.seconds));
    expect(after).toBeGreaterThan(before);
    await screenshot(page, 'room-reconnecting');
    server = await startLocalServer({ port, persistTo });
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 30_000 }).toBe('Live · controller');
    await screenshot(page, 'room-reconnected');
    expect(await page.locator('#banner').isHidden()).toBe(true);
    expect(await page.locator('#state').textContent()).toBe('Playing');
    await page.context().close();
  });
});
