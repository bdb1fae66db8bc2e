// The microphone in headless Chromium: Chromium's fake capture device plays
// WAV files rendered by FluidSynth, the pages stream them as binary PCM, and
// what comes back is checked on screen: the Analyse panel's tuner names the
// rendered note and draws its onsets; "What's playing?" names a catalog
// track; a refused microphone is explained. One server for all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { launchBrowser, screenshot, watchErrors } from '../support/browser.ts';
import { MIC_RATE, renderWavFile, tune } from '../support/audio.ts';
import { loadKissFFT } from '../../wasm/kissfft-node.ts';
import { FINGERPRINT_PRESETS, FINGERPRINT_VERSION, fingerprintSignal } from '../../wasm/fingerprint/index.ts';
import { fluidsynthAvailable } from '../fixtures/render.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { startProxy } from '../../bench/support/proxy.ts';
import { AnalysisStreamClient, analysisUrl } from '../../agent/analysis-stream-client.ts';
import type { AnalysisServerMessage } from '../../src/protocol/analysis-messages.ts';
import type { LiveStreamDetail, LiveStreamSummary } from '../../src/protocol/index.ts';

const TITLE = 'Seeded Tune No. 7';
const ARTIST = 'The Test Rig';

let server: LocalServer;
/** Its microphone plays a flute holding A4. */
let fluteBrowser: Browser;
/** Its microphone plays a tune that is in the catalog. */
let tuneBrowser: Browser;
/** Has a microphone, but its permission prompt is refused. */
let denyingBrowser: Browser;

interface AnalysisHandle {
  roomtone: { analysis: { stream: string | null; results: number; onsets: number; lastNote: string | null; streamStartServerMs: number | null } | null; state: string };
}

beforeAll(async () => {
  if (!fluidsynthAvailable()) throw new Error('these tests need fluidsynth and fluid-soundfont-gm (apt-get install -y fluidsynth fluid-soundfont-gm)');
  await buildWeb({ quiet: true });
  // A4 (440 Hz) on a flute: three long notes 1.5 s apart, so there is a steady pitch and an onset every 1.5 s.
  const flute = renderWavFile('flute-a4.wav', [0.2, 1.7, 3.2].map((start) => ({ note: 69, start, duration: 1.1, velocity: 100 })), 73, 4.5);
  const track = renderWavFile('tune.wav', tune(7, 20), 0, 20);
  [server, fluteBrowser, tuneBrowser, denyingBrowser] = await Promise.all([
    startLocalServer(),
    launchBrowser({ fakeMicWav: flute.path }),
    launchBrowser({ fakeMicWav: track.path }),
    launchBrowser({ denyMicrophone: true }),
  ]);
  // Fingerprinted here with the server's own code, as `roomtone catalog add` does, and uploaded as JSON.
  const fp = fingerprintSignal(await loadKissFFT(), FINGERPRINT_PRESETS.default, track.samples, MIC_RATE);
  const res = await fetch(`${server.url}/api/v1/catalog/tracks?wait=1`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({
      title: TITLE,
      artist: ARTIST,
      duration_s: track.samples.length / MIC_RATE,
      fingerprint_version: FINGERPRINT_VERSION,
      hashes: Array.from(fp.hashes),
      times: Array.from(fp.times),
    }),
  });
  if (res.status !== 201) throw new Error(`catalog upload failed: ${res.status} ${await res.text()}`);
}, 120_000);

afterAll(async () => {
  await Promise.all([fluteBrowser?.close(), tuneBrowser?.close(), denyingBrowser?.close()]);
  await server?.stop();
});

describe('the Analyse panel', () => {
  it('shows the rendered note on the tuner and draws its onsets on the room beat grid', async () => {
    const created = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', body: JSON.stringify({ bpm: 120 }) })).json()) as {
      code: string;
      control_token: string;
    };
    const context = await fluteBrowser.newContext({ viewport: { width: 1000, height: 1300 } });
    await context.grantPermissions(['microphone'], { origin: server.url });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}/r/${created.code}#control=${created.control_token}`);
    await page.waitForFunction(() => (window as unknown as AnalysisHandle).roomtone.state === 'open');
    await page.getByRole('button', { name: /^Play/ }).click();
    await page.getByRole('button', { name: 'Start analysing' }).click();
    await expect.poll(() => page.locator('#analyse-status').textContent(), { timeout: 10_000 }).toBe('Analysing');
    await expect.poll(() => page.locator('#tuner-note').textContent(), { timeout: 15_000 }).toBe('A4');
    const hz = Number(await page.locator('#tuner-hz').textContent());
    expect(Math.abs(hz - 440)).toBeLessThan(5);
    const cents = (await page.locator('#tuner-cents').textContent())!.replace('−', '-').replace('±', '');
    expect(Math.abs(Number(cents))).toBeLessThanOrEqual(15);
    // Onsets arrive as the notes start again (the fake microphone loops the file).
    await expect
      .poll(() => page.evaluate(() => (window as unknown as AnalysisHandle).roomtone.analysis?.onsets ?? 0), { timeout: 15_000 })
      .toBeGreaterThanOrEqual(2);
    const stats = await page.evaluate(() => (window as unknown as AnalysisHandle).roomtone.analysis!);
    expect(stats.streamStartServerMs).not.toBeNull();
    expect(Number(await page.locator('#analyse-level').evaluate((el) => (el as HTMLMeterElement).value))).toBeGreaterThan(-60);
    await screenshot(page, 'analyse-tuner');
    await page.getByRole('button', { name: 'Stop analysing' }).click();
    await expect.poll(() => page.locator('#analyse-status').textContent()).toBe('Stopped.');
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe('the Analyse panel across a dead link', () => {
  it('gives up a silent link by itself and takes its stream back from the socket the server still holds', async () => {
    // Everything the page does goes through a proxy whose link can die silently.
    const proxy = await startProxy({ target: server.url });
    const created = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string };
    const context = await fluteBrowser.newContext();
    await context.grantPermissions(['microphone'], { origin: proxy.url });
    const page = await context.newPage();
    const errors = watchErrors(page);
    const analysis = () => page.evaluate(() => (window as unknown as AnalysisHandle).roomtone.analysis!);
    try {
      await page.goto(`${proxy.url}/r/${created.code}`);
      await page.getByRole('button', { name: 'Start analysing' }).click();
      await expect.poll(() => page.locator('#analyse-status').textContent(), { timeout: 10_000 }).toBe('Analysing');
      await expect.poll(async () => (await analysis()).results, { timeout: 10_000 }).toBeGreaterThan(20);

      // A watcher connected directly, past the proxy, sees what the server sees.
      const statuses: string[] = [];
      const watcher = await AnalysisStreamClient.connect(analysisUrl(server.url, { room: created.code, name: (await analysis()).stream! }), {
        role: 'watcher',
        onMessage: (m: AnalysisServerMessage) => void (m.type === 'status' && statuses.push(m.state)),
      });
      try {
        proxy.blackhole(true);
        await expect.poll(() => page.locator('#analyse-status').textContent(), { timeout: 10_000 }).toMatch(/^Reconnecting \(no answer for 4 s\)/);
        // The page has let its socket go; the server never heard (nothing crosses a dead link).
        expect(await watcher.stats()).toMatchObject({ source_connected: true });
        const before = (await analysis()).results;
        proxy.blackhole(false);
        // Without the resume token the server would refuse the page as a second source while it holds the first.
        await expect.poll(() => page.locator('#analyse-status').textContent(), { timeout: 30_000 }).toBe('Analysing');
        await expect.poll(async () => (await analysis()).results, { timeout: 10_000 }).toBeGreaterThan(before + 20);
        // Taken over, not left and rejoined: the server still held the old socket when the page came back.
        expect(statuses).toEqual(['source_joined']);
      } finally {
        await watcher.close();
      }
      expect((await analysis()).lastNote).toBe('A4');
      expect(await page.locator('#analyse-error').isVisible()).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await proxy.close();
    }
  }, 90_000);
});

describe("the What's playing? page", () => {
  it('names the catalog track the microphone hears, with its artist and the position in the track', async () => {
    const context = await tuneBrowser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });
    await context.grantPermissions(['microphone'], { origin: server.url });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}/identify`);
    await page.getByRole('button', { name: 'Listen' }).click();
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('Listening');
    await expect.poll(() => page.locator('#match-title').textContent(), { timeout: 30_000 }).toBe(TITLE);
    expect(await page.locator('#match-artist').textContent()).toBe(ARTIST);
    // The page sends the frames the server advises, not the microphone's ~85 ms ones: the server pays per message.
    const streams = (await (await fetch(`${server.url}/api/v1/monitoring/live-streams`, { headers: { authorization: 'Bearer test-admin-token' } })).json()) as { streams: LiveStreamSummary[] };
    const mine = streams.streams.find((x) => x.client_id.startsWith('web-'))!;
    const detailNow = async () => (await (await fetch(`${server.url}/api/v1/monitoring/live-streams/${mine.client_id}`, { headers: { authorization: 'Bearer test-admin-token' } })).json()) as LiveStreamDetail;
    const detail = await detailNow();
    expect(detail.frames).toBeGreaterThan(0);
    // Half a second until the track is known. Matched audio lags what arrived by up to a frame: 0.3 s still tells 0.5 s frames from 0.085 s ones.
    expect(detail.audio_s / detail.frames).toBeGreaterThan(0.3);
    // Known: the server matches 2 s batches and says so; the page's frames grow to the longest that fits (1.28 s at 48 kHz).
    let later = detail;
    await expect.poll(async () => (later = await detailNow()).audio_s, { timeout: 15_000 }).toBeGreaterThan(detail.audio_s + 5);
    expect((later.audio_s - detail.audio_s) / (later.frames - detail.frames)).toBeGreaterThan(0.9);
    // How long it has listened is on screen and grows.
    const listened = async () => Number(/Listening… ([\d.]+) s/.exec((await page.locator('#listen-status').textContent()) ?? '')?.[1]);
    const first = await listened();
    await page.waitForTimeout(600);
    expect(await listened()).toBeGreaterThan(first);
    // The fake microphone plays the 20 s file in a loop: the position is somewhere inside the track.
    const pos = (await page.locator('#match-pos').textContent())!;
    const [m, s] = pos.split(':').map(Number);
    expect(m * 60 + s).toBeLessThanOrEqual(21);
    expect(await page.locator('#level').evaluate((el) => (el as HTMLMeterElement).value)).toBeGreaterThan(-60);
    await screenshot(page, 'identify-match');
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => page.locator('#conn').textContent()).toBe('Not listening');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('explains a refused microphone instead of failing silently, here and on the room page', async () => {
    const context = await denyingBrowser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/identify`);
    await page.getByRole('button', { name: 'Listen' }).click();
    await expect.poll(() => page.locator('#mic-error').textContent(), { timeout: 10_000 }).toMatch(/^Microphone access was denied/);
    expect(await page.getByRole('button', { name: 'Listen' }).isEnabled()).toBe(true);
    expect(await page.locator('#conn').textContent()).toBe('Not listening');
    await screenshot(page, 'identify-mic-denied');
    const room = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST' })).json()) as { code: string };
    await page.goto(`${server.url}/r/${room.code}`);
    await page.getByRole('button', { name: 'Start analysing' }).click();
    await expect.poll(() => page.locator('#analyse-error').textContent(), { timeout: 10_000 }).toMatch(/^Microphone access was denied/);
    expect(await page.getByRole('button', { name: 'Start analysing' }).isEnabled()).toBe(true);
    await context.close();
  });
});
