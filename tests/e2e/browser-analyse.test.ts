// The room page's Analyse panel in headless Chromium: the fake microphone
// plays a note rendered by FluidSynth, the page streams it to the room's
// analysis stream, and the tuner names the note while the onsets appear on
// the timeline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startLocalServer, type LocalServer } from '../support/local-server.ts';
import { launchBrowser, screenshot, watchErrors } from '../support/browser.ts';
import { renderWavFile } from '../support/audio.ts';
import { fluidsynthAvailable } from '../fixtures/render.ts';
import { buildWeb } from '../../scripts/build-web.ts';

let server: LocalServer;
let browser: Browser;

interface AnalysisHandle {
  roomtone: { analysis: { results: number; onsets: number; lastNote: string | null; streamStartServerMs: number | null } | null; state: string };
}

beforeAll(async () => {
  if (!fluidsynthAvailable()) throw new Error('these tests need fluidsynth and fluid-soundfont-gm (apt-get install -y fluidsynth fluid-soundfont-gm)');
  await buildWeb({ quiet: true });
  // A4 (440 Hz) on a flute: three long notes a second apart, so there is a steady pitch and an onset every 1.5 s.
  const notes = [0.2, 1.7, 3.2].map((start) => ({ note: 69, start, duration: 1.1, velocity: 100 }));
  const wav = renderWavFile('flute-a4.wav', notes, 73, 4.5);
  [server, browser] = await Promise.all([startLocalServer(), launchBrowser({ fakeMicWav: wav.path })]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('the Analyse panel', () => {
  it('shows the rendered note on the tuner and draws its onsets on the room beat grid', async () => {
    const created = (await (await fetch(`${server.url}/api/v1/rooms`, { method: 'POST', body: JSON.stringify({ bpm: 120 }) })).json()) as {
      code: string;
      control_token: string;
    };
    const context = await browser.newContext({ viewport: { width: 1000, height: 1300 } });
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
