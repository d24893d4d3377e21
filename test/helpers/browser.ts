// A headless Chromium for the dashboard test, on any machine `npm ci` ran on: the browser named by
// TOPTALLY_CHROMIUM, else Debian's /usr/bin/chromium, else the one shipped compressed inside the
// @sparticuz/chromium package (unpacked once into a directory named after its version).

import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';

const SYSTEM_CHROMIUM = '/usr/bin/chromium';
const SYSTEM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the browser came from, for the test's diagnostics. */
export type BrowserSource = 'TOPTALLY_CHROMIUM' | typeof SYSTEM_CHROMIUM | '@sparticuz/chromium';

export async function launchBrowser(): Promise<{ browser: Browser; source: BrowserSource }> {
  const given = process.env.TOPTALLY_CHROMIUM;
  if (given) return { browser: await chromium.launch({ executablePath: given, args: SYSTEM_FLAGS }), source: 'TOPTALLY_CHROMIUM' };
  if (existsSync(SYSTEM_CHROMIUM)) {
    return { browser: await chromium.launch({ executablePath: SYSTEM_CHROMIUM, args: SYSTEM_FLAGS }), source: SYSTEM_CHROMIUM };
  }
  const { executablePath, args } = await bundledChromium();
  return { browser: await chromium.launch({ executablePath, args }), source: '@sparticuz/chromium' };
}

/**
 * A page with a fixed locale: under LANG=C.UTF-8 Chromium reports "en-US@posix", which
 * Intl.NumberFormat (used by uPlot) refuses as a language tag.
 */
export function newPage(browser: Browser, options: BrowserContextOptions = {}): Promise<Page> {
  return browser.newPage({ locale: 'en-US', ...options });
}

/**
 * The package unpacks into $TMPDIR/chromium and reuses whatever is there without looking at its
 * version, so it is pointed at a directory of its own per version, filled in a scratch directory
 * and renamed into place: a run killed while unpacking leaves nothing that a later run would reuse.
 */
async function bundledChromium(): Promise<{ executablePath: string; args: string[] }> {
  const { default: Sparticuz } = await import('@sparticuz/chromium');
  const pkg = JSON.parse(readFileSync(new URL('../../node_modules/@sparticuz/chromium/package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const home = join(tmpdir(), `toptally-chromium-${pkg.version}`);
  if (!existsSync(join(home, 'chromium'))) {
    const scratch = mkdtempSync(`${home}.unpacking-`);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = scratch; // the package unpacks into os.tmpdir()
    try {
      Sparticuz.setGraphicsMode = false;
      await Sparticuz.executablePath();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    try {
      renameSync(scratch, home);
    } catch (err) {
      // Another test process got there first: use its copy.
      rmSync(scratch, { recursive: true, force: true });
      if (!existsSync(join(home, 'chromium'))) throw err;
    }
  }
  // --single-process makes closing the first page end the whole browser.
  const args = Sparticuz.args.filter((arg) => arg !== '--single-process');
  return { executablePath: join(home, 'chromium'), args };
}
