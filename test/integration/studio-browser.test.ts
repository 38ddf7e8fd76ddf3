// The local template studio end to end in headless Chromium, on a temporary copy of the templates
// (the repository's own are never edited): edit a subject and see the preview change; use an
// unknown variable and see the error with its file and line; a save is refused while it stands;
// fix it and save (the file on disk changed and lints clean); change a file on disk and see the
// page reload; a screenshot a person can read, CJK included.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { createLogger } from '../../lib/logger.ts';
import { startLocalStudio, type RunningStudio } from '../../lib/studio/local.ts';
import { lintTemplates } from '../../lib/templates/lint.ts';
import { defaultTemplatesDir } from '../../lib/templates/store.ts';
import { launchBrowser } from '../support/browser.ts';

const FILE = 'payment-recovered/zh-CN.email.liquid';

let work: string;
/** Kept after the run, so a person can look at the screenshots (their paths are printed). */
let shots: string;
let dir: string;
let studio: RunningStudio;
let browser: Browser;
let page: Page;
let sender: EmailSender;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'forewarn-studio-'));
  dir = join(work, 'templates');
  shots = await mkdtemp(join(tmpdir(), 'forewarn-studio-shots-'));
  await cp(defaultTemplatesDir, dir, { recursive: true });
  const logger = createLogger({ level: 'warn' });
  sender = createEmailSender({ outboxDir: join(work, 'outbox'), from: 'studio@example.com', logger });
  studio = await startLocalStudio({
    dir,
    host: '127.0.0.1',
    port: 0,
    logger,
    testSend: () => ({ allow: ['*@example.com'], sender, messageIdDomain: 'example.com' }),
  });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await studio?.close();
  await sender?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A bounded wait for a condition; the full linter behind a save takes a few seconds on a busy machine. */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 90_000, interval: 100 });

/** Replaces the editor's whole text as typing would (an input event), so the page re-checks. */
async function typeSource(text: string): Promise<void> {
  await page.locator('#source').fill(text);
}

describe('the local template studio in Chromium', () => {
  it('previews, lints as the author types, refuses a broken save, saves a fixed one, reloads on a disk change', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      // Refused saves answer 422 and the browser asks for a favicon: not errors of the page's own.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        errors.push(message.text());
      }
    });
    await page.goto(`${studio.address}/#payment-recovered/zh-CN/email`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
    await poll(() => page.locator('#file').textContent()).toBe(FILE);
    await poll(() => page.locator('#subject').textContent()).toContain('微信支付');
    // The variables, explained, with an example from the sample.
    const variables = page.locator('#variables');
    await poll(() => variables.textContent()).toContain('recoveredAt');
    expect(await variables.textContent()).toContain('When the channel worked normally again');

    const original = await readFile(join(dir, FILE), 'utf8');
    const edited = original.replace(/^subject: .*$/m, 'subject: 【好消息】{{ channelName }}又能用了');
    expect(edited).not.toBe(original);
    await typeSource(edited);
    await poll(() => page.locator('#subject').textContent()).toBe('【好消息】微信支付又能用了');
    // The email's HTML is in the sandboxed frame, and changes with the text.
    const frame = page.frameLocator('#preview');
    await poll(() => frame.locator('body').textContent()).toContain('微信支付');
    expect(await page.locator('#preview').getAttribute('sandbox')).toBe('');

    // An unknown variable on the body's first line: the error names the file and the line.
    const lines = edited.split('\n');
    const bodyStart = lines.indexOf('---', 1) + 2;
    lines.splice(bodyStart - 1, 0, '{{ channelNmae }}');
    await typeSource(lines.join('\n'));
    const problems = page.locator('#problems');
    await poll(() => problems.textContent()).toContain(`${FILE}:${bodyStart}`);
    expect(await problems.textContent()).toContain('"channelNmae" is not a variable of payment-recovered');

    await page.locator('#save').click();
    await poll(() => page.locator('#status').textContent()).toContain('not saved');
    expect(await readFile(join(dir, FILE), 'utf8')).toBe(original);

    const screenshot = join(shots, 'studio-error.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(`studio screenshot (an error shown): ${screenshot}\n`);

    // Fixed, it saves: the file holds the new subject and lints clean.
    await typeSource(edited);
    await poll(() => problems.locator('li').count()).toBe(0);
    await page.locator('#save').click();
    await poll(() => page.locator('#status').textContent()).toContain('Saved');
    expect(await readFile(join(dir, FILE), 'utf8')).toBe(edited);
    expect(await lintTemplates(dir)).toEqual([]);
    const shot = join(shots, 'studio-saved.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`studio screenshot (saved): ${shot}\n`);

    // Someone edits the file on disk: the page reloads and shows it.
    const onDisk = edited.replace('又能用了', '已恢复（磁盘上改的）');
    const reloaded = page.waitForEvent('load');
    await writeFile(join(dir, FILE), onDisk, 'utf8');
    await reloaded;
    await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
    await poll(() => page.locator('#source').inputValue()).toBe(onDisk);
    await poll(() => page.locator('#subject').textContent()).toBe('【好消息】微信支付已恢复（磁盘上改的）');
    // The strict CSP allowed the studio's own script and nothing broke.
    expect(errors).toEqual([]);
  }, 240_000);

  it('the sample data is editable and platform data is shown as text, never markup', async () => {
    await page.goto(`${studio.address}/#payment-recovered/en/inapp`);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 90_000 });
    const data = JSON.parse(await page.locator('#data').inputValue()) as Record<string, unknown>;
    data.channelName = '<img src=x onerror=alert(1)>Pay';
    await page.locator('#data').fill(JSON.stringify(data));
    await poll(() => page.locator('#subject').textContent()).toContain('<img src=x onerror=alert(1)>Pay');
    expect(await page.locator('#subject img').count()).toBe(0);
    // Bad JSON is said beside the data, the preview waits.
    await page.locator('#data').fill('{ not json');
    await poll(() => page.locator('#data-error').textContent()).toContain('not valid JSON');
  }, 120_000);
});
