// Measures the backtest's HTML report at 30 days of 30 pairs: loads simulated history (one outage
// on every pair, so that every pair is shown: the page's worst case), runs
// `forewarn backtest --format html`, prints the file's size, then opens it in Chromium and prints
// how long it took to load and draw. Run it by hand: `npx tsx bench/report-size.ts`.
// BENCH_REPORT_DAYS (30) and BENCH_REPORT_RATE (0.1: a tenth of the reference traffic; the page's
// size depends on the pairs and buckets, not on the attempts) make it smaller or larger.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { copyAttempts, seedPlatform } from '../sim/load.ts';
import { referencePlatform } from '../sim/platform.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import { generateAttempts, type Scenario } from '../sim/traffic.ts';
import { launchBrowser } from '../test/support/browser.ts';
import { benchDatabase } from './support.ts';

const run = promisify(execFile);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const days = Number(process.env.BENCH_REPORT_DAYS ?? 30);
const rateScale = Number(process.env.BENCH_REPORT_RATE ?? 0.1);
const FROM = Date.parse('2026-03-01T16:00:00Z');
const TO = FROM + days * DAY;

const platform = referencePlatform();
// One 20-minute outage per pair, spread over the range at 14:00 Beijing time.
const scenarios: Scenario[] = platform.pairs.map((pair, i) => ({
  channel: pair.channel,
  region: pair.region,
  from: FROM + (i % days) * DAY + 6 * HOUR + i * 60_000,
  to: FROM + (i % days) * DAY + 6 * HOUR + i * 60_000 + 20 * 60_000,
  effect: { type: 'outage' },
}));

const db = await benchDatabase('forewarn_bench_report');
const client = new pg.Client({ connectionString: db.url });
await client.connect();
try {
  await createPlatformSchema(client, 'platform', { reset: true });
  await seedPlatform(client, 'platform', platform, []);
  let started = performance.now();
  const rows = await copyAttempts(
    client,
    'platform',
    // The 6-hour warm-up (a baseline half-life, without a stored state) and the longest window.
    generateAttempts({ platform, from: FROM - 8 * HOUR, to: TO, seed: 2026, scenarios, rateScale }),
  );
  await client.query('ANALYZE platform.payment_attempts');
  console.log(
    `loaded ${rows} attempts over ${days} days in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );

  const out = join(tmpdir(), `forewarn-report-${days}d.html`);
  started = performance.now();
  const { stdout } = await run(
    process.execPath,
    [
      'bin/forewarn.js',
      'backtest',
      '--detector',
      'payment-health',
      '--from',
      new Date(FROM).toISOString(),
      '--to',
      new Date(TO).toISOString(),
      '--format',
      'html',
      '--out',
      out,
    ],
    {
      env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const size = (await stat(out)).size;
  console.log(stdout.trim());
  console.log(
    `backtest and page: ${((performance.now() - started) / 1000).toFixed(0)} s; ` +
      `page ${(size / 1024 / 1024).toFixed(2)} MiB (${size} bytes) at ${out}`,
  );

  const browser = await launchBrowser();
  try {
    for (let round = 1; round <= 3; round++) {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const opened = performance.now();
      await page.goto(pathToFileURL(out).href);
      await page.waitForFunction('document.body.dataset.rendered !== undefined', null, {
        timeout: 60_000,
      });
      const wall = performance.now() - opened;
      const figures = await page.evaluate<{ state: string; charts: string; drawMs: string; readyMs: string }>(
        '({ state: document.body.dataset.rendered, charts: document.body.dataset.charts, ' +
          'drawMs: document.body.dataset.renderMs, readyMs: document.body.dataset.readyMs })',
      );
      console.log(
        `open ${round}: ${figures.state}, ${figures.charts} charts, drawn in ${figures.drawMs} ms, ` +
          `${figures.readyMs} ms after navigation began (${wall.toFixed(0)} ms as the driver saw it)`,
      );
      await page.close();
    }
  } finally {
    await browser.close();
  }
} finally {
  await client.end();
  await db.drop();
}
