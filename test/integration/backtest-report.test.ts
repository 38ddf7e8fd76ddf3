// `forewarn backtest --format html` as ops run it, over three hours of simulated history in a real
// PostgreSQL: a hard outage of wechat_pay in CN-GD and a 20% failure share of alipay there. The
// page is self-contained (uPlot inlined, no http(s) src or href, a CSP that allows no request),
// holds both incidents, and stays small; with --compare a config whose failure threshold is far
// higher finds the outage but not the 20%, and the page says so. Chromium opens the file,
// draws every chart without a console error or a single request, and takes a screenshot.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts } from '../../sim/traffic.ts';
import { launchBrowser } from '../support/browser.ts';
import { runForewarn, type CliResult } from '../support/cli.ts';
import { loadPlatform } from '../support/platform.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const MINUTE = 60_000;
const TRAFFIC_FROM = Date.UTC(2026, 2, 2, 10, 0);
const TRAFFIC_TO = Date.UTC(2026, 2, 2, 13, 0);
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const DEGRADED_START = Date.UTC(2026, 2, 2, 11, 20);
const FROM = new Date(TRAFFIC_FROM + 60 * MINUTE).toISOString();
const TO = new Date(TRAFFIC_TO).toISOString();
const REGION = 'CN-GD';

let db: TestDatabase;
let dir: string;
let strict: string;
let browser: Browser | undefined;

function forewarn(args: string[]): Promise<CliResult> {
  return runForewarn(args, {
    env: { DATABASE_URL: db.url, FOREWARN_CONFIG: SHIPPED, LOG_LEVEL: 'warn' },
    timeoutMs: 120_000,
  });
}

const BACKTEST = ['backtest', '--detector', 'payment-health', '--from', FROM, '--to', TO];

function expectExit(result: CliResult, code: number): void {
  expect(result.signal, `killed; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

/** The JSON the page embeds for its charts. */
function embeddedData(html: string): {
  runs: string[];
  subjects: Array<{ x: number[]; charts: Array<{ spans: number[][]; values: unknown[][] }> }>;
} {
  const match = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html);
  expect(match, 'the embedded data').not.toBeNull();
  return JSON.parse(match![1]!) as ReturnType<typeof embeddedData>;
}

beforeAll(async () => {
  const platform = referencePlatform();
  const users = generateUsers(5_000, 3, { platform });
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform,
    users,
    attempts: generateAttempts({
      platform,
      from: TRAFFIC_FROM,
      to: TRAFFIC_TO,
      seed: 77,
      users,
      scenarios: [
        {
          channel: 'wechat_pay',
          region: REGION,
          from: OUTAGE_START,
          to: OUTAGE_START + 10 * MINUTE,
          effect: { type: 'outage' },
        },
        {
          channel: 'alipay',
          region: REGION,
          from: DEGRADED_START,
          to: DEGRADED_START + 15 * MINUTE,
          effect: { type: 'failureRate', rate: 0.2 },
        },
      ],
    }),
  });
  dir = await mkdtemp(join(tmpdir(), 'forewarn-report-'));
  // The same config, but a failure share must rise 30 points above its baseline, not 8.
  const shipped = await readFile(SHIPPED, 'utf8');
  const raised = shipped.replace(/(failures:\n(?:\s+#.*\n|\s+\w+: .*\n)*?\s+minIncrease: )0\.08/, '$10.30');
  expect(raised).not.toBe(shipped);
  strict = join(dir, 'strict.yaml');
  await writeFile(strict, raised);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('forewarn backtest --format html', () => {
  it('writes a self-contained page with both incidents, their backups and evidence', async () => {
    const out = join(dir, 'report.html');
    const result = await forewarn([...BACKTEST, '--format', 'html', '--out', out]);
    expectExit(result, 0);
    expect(result.stdout).toMatch(/^wrote .*report\.html \(\d+\.\d\d MB\): 2 incident\(s\)\n$/);
    const html = await readFile(out, 'utf8');

    // Self-contained: no URL to load anything from, uPlot inlined, and a CSP that forbids requests.
    // (Booleans: a failing match would print the whole page.)
    expect(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i.test(html), 'an http(s) src or href').toBe(false);
    expect(/<link\b/i.test(html), 'a <link>').toBe(false);
    expect(html.includes(`content="default-src 'none';`), 'the CSP').toBe(true);
    expect(html.includes('<script>/*! https://github.com/leeoniya/uPlot'), 'uPlot inlined').toBe(true);

    // The summary table: both incidents with their evidence and backups.
    const table = /<table class="incidents">([^]*?)<\/table>/.exec(html)![1]!;
    const rows = table.split('<tr>').filter((r) => r.includes('<td>'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('alipay × CN-GD');
    expect(rows[1]).toContain('wechat_pay × CN-GD');
    for (const row of rows) {
      expect(row).toMatch(/failures/);
      expect(row).toMatch(/\d+\/\d+ failed in \d+s/);
      expect(row).toMatch(/<td>\d+ s<\/td>/); // the delay from the first degraded tick
    }
    expect(rows[1]).toContain('codes SYSTEMERROR');

    // Charts of the two subjects that had an incident; the quiet ones are counted, not drawn.
    const shown = /(\d+) of (\d+) channel × region shown/.exec(html);
    expect(shown).not.toBeNull();
    const data = embeddedData(html);
    expect(data.subjects.length).toBe(Number(shown![1]));
    expect(Number(shown![2])).toBeGreaterThan(Number(shown![1]));
    expect(/\d+ quiet channel × region left out/.test(html), 'the quiet ones counted').toBe(true);
    const spans = data.subjects.flatMap((s) => s.charts[0]!.spans);
    expect(spans).toHaveLength(2);
    // Downsampled: about 2,000 points per series over two hours of 15-second ticks (480 ticks):
    // here every tick is one point; the size bound holds whatever the length.
    for (const s of data.subjects) expect(s.x.length).toBeLessThanOrEqual(2_002);
    expect((await stat(out)).size).toBeLessThan(600 * 1024);
  });

  it('--compare: a higher threshold keeps the outage and loses the 20% failure share', async () => {
    const out = join(dir, 'compare.html');
    const result = await forewarn([...BACKTEST, '--format', 'html', '--out', out, '--compare', strict]);
    expectExit(result, 0);
    expect(result.stdout).toMatch(/: 2 incident\(s\) vs 1 incident\(s\)\n$/);
    const html = await readFile(out, 'utf8');
    const counts = /<p class="counts">.*?<\/p>/.exec(html)?.[0];
    // The outage is found at the same times by both; B names bank_card as a backup too (its own
    // higher threshold leaves it healthy), so the incident counts as changed.
    expect(counts).toMatch(/<b>0<\/b> added, <b>1<\/b> removed, <b>1<\/b> changed, 0 the same/);
    const removed = /<tr class="removed">([^]*?)<\/tr>/.exec(html);
    expect(removed?.[1]).toContain('alipay × CN-GD');
    const changed = /<tr class="changed">([^]*?)<\/tr>/.exec(html)?.[1];
    expect(changed).toContain('wechat_pay × CN-GD');
    expect(changed).toContain('bank_card');
    // Both runs' spans on the charts, told apart by run; B's thresholds drawn beside A's.
    const data = embeddedData(html);
    expect(data.runs).toEqual(['A', 'B']);
    const runsOfSpans = data.subjects.flatMap((s) => s.charts[0]!.spans.map((span) => span[0]));
    expect(runsOfSpans.sort()).toEqual([0, 0, 1]);
    expect(data.subjects[0]!.charts[0]!.values).toHaveLength(5);
    await checkInBrowser(out, 'compare.png');
  });

  it('opens in Chromium offline: every chart drawn, no console error, no request', async () => {
    await checkInBrowser(join(dir, 'report.html'), 'report.png');
  });

  it('--format html without --out, and a --compare that cannot be read, are clear errors', async () => {
    const noOut = await forewarn([...BACKTEST, '--format', 'html']);
    expectExit(noOut, 2);
    expect(noOut.stderr).toContain('--format html: expected --out <file>');
    const missing = join(dir, 'missing.yaml');
    const badCompare = await forewarn([
      ...BACKTEST,
      '--format',
      'html',
      '--out',
      join(dir, 'x.html'),
      '--compare',
      missing,
    ]);
    expect(badCompare.code).not.toBe(0);
    expect(badCompare.stderr).toContain(`--compare: ${missing}: cannot read the config file`);
    const compareJson = await forewarn([...BACKTEST, '--format', 'json', '--compare', strict]);
    expectExit(compareJson, 2);
    expect(compareJson.stderr).toContain('--compare: only with --format html');
  });
});

async function checkInBrowser(file: string, screenshot: string): Promise<void> {
  browser ??= await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.url() !== pathToFileURL(file).href) requests.push(r.url());
  });
  try {
    await page.goto(pathToFileURL(file).href);
    // (Strings: they run in the page, whose DOM types this project's tsconfig does not include.)
    await page.waitForFunction('document.body.dataset.rendered !== undefined', null, { timeout: 20_000 });
    expect(await page.evaluate<string>('document.body.dataset.rendered')).toBe('true');
    const charts = await page.locator('.chart').count();
    expect(charts).toBeGreaterThan(0);
    expect(await page.locator('.chart canvas').count()).toBe(charts);
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    const path = join(process.env.FOREWARN_SCREENSHOTS ?? dir, screenshot);
    await page.screenshot({ path, fullPage: true });
    expect((await stat(path)).size).toBeGreaterThan(10_000);
  } finally {
    await page.close();
  }
}
