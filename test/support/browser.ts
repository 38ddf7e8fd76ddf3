// Headless Chromium for the browser tests: Debian's own package, driven by playwright-core (which
// never downloads a browser). A missing browser fails the test with the command that installs
// it; the browser tests are never skipped.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser; FOREWARN_CHROMIUM names another. */
export const CHROMIUM_PATH = process.env.FOREWARN_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_MISSING =
  `no Chromium at ${CHROMIUM_PATH}: the browser tests need Debian's chromium package ` +
  '(apt-get install -y chromium; bash .ci/run installs it), or FOREWARN_CHROMIUM set to a Chromium binary';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(CHROMIUM_MISSING);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
