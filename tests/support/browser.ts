// Headless Chromium for the browser tests: Debian's build driven by
// playwright-core (no browser download). A fake microphone plays a WAV file in
// a loop, so capture, analysis and identification run on known audio.
import { chromium, type Browser, type Page } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const ARTIFACTS = join(ROOT, 'test-artifacts');

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string {
  const found = CANDIDATES.find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error('no Chromium found: install it (apt-get install chromium) or set CHROMIUM_PATH');
  return found;
}

export interface LaunchOptions {
  /** A WAV file the fake microphone plays (looped); the permission prompt is accepted. */
  fakeMicWav?: string;
  /** A fake microphone whose permission prompt is refused, as when a person clicks "Block". */
  denyMicrophone?: boolean;
}

export async function launchBrowser(opts: LaunchOptions = {}): Promise<Browser> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Two pages in one test both run their animation frames at full rate.
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    '--autoplay-policy=no-user-gesture-required',
  ];
  // Without --use-fake-ui-for-media-stream, headless Chromium refuses the permission prompt.
  if (opts.denyMicrophone) args.push('--use-fake-device-for-media-stream');
  if (opts.fakeMicWav) {
    args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${opts.fakeMicWav}`);
  }
  return chromium.launch({ executablePath: chromiumPath(), args, headless: true });
}

/** Collects the page's console errors and uncaught exceptions, so a test can assert there were none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
