// `forewarn templates lint` and `forewarn templates preview` as staff run them: a real child
// process, real exit codes (0 ok, 1 problems, 2 usage), files written where it says.
import { runForewarn } from '../support/cli.ts';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templateKinds } from '../../templates/kinds.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function forewarn(args: string[]): Promise<Result> {
  // lint renders every template both ways with hundreds of value sets: seconds on a busy machine.
  return runForewarn(args, { env: { LOG_LEVEL: 'silent' }, timeoutMs: 120_000 });
}

function expectExit(result: Result, code: number): void {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'forewarn-templates-cli-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('forewarn templates lint', () => {
  it('exits 0 with a one-line summary on the shipped templates', async () => {
    const result = await forewarn(['templates', 'lint']);
    expectExit(result, 0);
    expect(result.stdout).toMatch(
      /^templates: ok, \d+ templates for \d+ kinds in (.+, )?en, (.+, )?zh-CN\n$/,
    );
    expect(result.stderr).toBe('');
  }, 150_000);

  it('exits 0 on templates written to trip the fast path (it renders every one both ways)', async () => {
    const dir = join(tmp, 'hostile');
    await cp(join(ROOT, 'templates'), dir, { recursive: true });
    const file = join(dir, 'payment-recovered/en.email.liquid');
    const text = await readFile(file, 'utf8');
    // For users without a name (the "no name" variant), the assigns are skipped and the data's
    // values are printed: the fast path once reused a shape rendered with another message's.
    const hostile = text
      .replace('Hi {{ userName }},', '{% assign channelName = "TestPay" %}Hi {{ userName }},')
      .replace(
        'Top up or shop:',
        '{% for c in (2..1) %}{% assign region = c %}{% endfor %}Top up in {{ region }}:',
      );
    expect(hostile).not.toBe(text);
    await writeFile(file, hostile);
    const result = await forewarn(['templates', 'lint', '--dir', dir]);
    expectExit(result, 0);
    expect(result.stderr).toBe('');
  }, 150_000);

  it('exits 1 on a broken copy, printing file:line: message for each problem', async () => {
    const dir = join(tmp, 'broken');
    await cp(join(ROOT, 'templates'), dir, { recursive: true });
    const file = join(dir, 'payment-degraded/zh-CN.email.liquid');
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.includes('{{ payUrl }}')) + 1;
    await writeFile(file, text.replace('{{ payUrl }}', '{{ payURL }}'));
    await rm(join(dir, 'payment-recovered/en.inapp.liquid'));

    const result = await forewarn(['templates', 'lint', '--dir', dir]);
    expectExit(result, 1);
    expect(result.stderr).toContain(
      `${file}:${line}: {{ payURL }}: "payURL" is not a variable of payment-degraded`,
    );
    expect(result.stderr).toContain(`${join(dir, 'payment-recovered/en.inapp.liquid')}:1: missing`);
    expect(result.stderr).toContain('2 problem(s) in the templates in');
    expect(result.stdout).toBe('');
  }, 150_000);
});

describe('forewarn templates preview', () => {
  it('renders an email with the sample data into an HTML and a text file', async () => {
    const out = join(tmp, 'previews');
    const result = await forewarn([
      'templates',
      'preview',
      'payment-degraded',
      '--locale',
      'zh-CN',
      '--channel',
      'email',
      '--out',
      out,
    ]);
    expectExit(result, 0);
    const html = join(out, 'payment-degraded.zh-CN.email.html');
    const txt = join(out, 'payment-degraded.zh-CN.email.txt');
    expect(result.stdout).toBe(`${html}\n${txt}\n`);
    const channelName = templateKinds['payment-degraded'].sample.channelName;
    expect(await readFile(html, 'utf8')).toContain(`${channelName}在您所在地区`);
    expect(await readFile(txt, 'utf8')).toMatch(new RegExp(`^Subject: 【支付提醒】${channelName}`));
  });

  it('renders an in-app message from a data file, escaped, and says which locale it fell back to', async () => {
    const out = join(tmp, 'previews-data');
    const dataFile = join(tmp, 'data.json');
    const sample = templateKinds['payment-recovered'].sample;
    await writeFile(dataFile, JSON.stringify({ ...sample, channelName: 'TestPay <b>' }));
    const result = await forewarn([
      'templates',
      'preview',
      'payment-recovered',
      '--locale',
      'fr-FR',
      '--channel',
      'inapp',
      '--data',
      dataFile,
      '--out',
      out,
    ]);
    expectExit(result, 0);
    const html = join(out, 'payment-recovered.zh-CN.inapp.html');
    expect(result.stdout).toBe(`${html}\n`);
    expect(result.stderr).toContain('no fr-FR template for inapp; rendered zh-CN');
    const page = await readFile(html, 'utf8');
    expect(page).toContain('TestPay &lt;b&gt;已恢复正常');
    expect(page).not.toContain('<b>');
  });

  it('exits 1 naming the file and the data path when the data does not match the kind', async () => {
    const dataFile = join(tmp, 'bad.json');
    const sample = templateKinds['payment-recovered'].sample;
    await writeFile(dataFile, JSON.stringify({ ...sample, payUrl: 'not a url', region: 7 }));
    const result = await forewarn([
      'templates',
      'preview',
      'payment-recovered',
      '--data',
      dataFile,
      '--out',
      tmp,
    ]);
    expectExit(result, 1);
    expect(result.stderr).toContain(`error [FW_TEMPLATE_RENDER]: ${dataFile}: data.region: expected string`);
    expect(result.stderr).toContain('data.payUrl:');
  });

  it('exits 1 on a data file that is not JSON', async () => {
    const dataFile = join(tmp, 'broken.json');
    await writeFile(dataFile, '{ nope');
    const result = await forewarn(['templates', 'preview', 'payment-recovered', '--data', dataFile]);
    expectExit(result, 1);
    expect(result.stderr).toContain(`${dataFile}: not valid JSON`);
  });

  it('exits 2 on an unknown kind, listing the kinds', async () => {
    const result = await forewarn(['templates', 'preview', 'payment-degarded', '--out', tmp]);
    expectExit(result, 2);
    expect(result.stderr).toContain(
      'unknown template kind "payment-degarded": expected one of payment-degraded, payment-recovered, ops-incident-opened, ops-incident-resolved',
    );
  });

  it('exits 2 on a channel the kind does not have, listing its channels', async () => {
    const result = await forewarn([
      'templates',
      'preview',
      'ops-incident-opened',
      '--channel',
      'inapp',
      '--out',
      tmp,
    ]);
    expectExit(result, 2);
    expect(result.stderr).toContain('ops-incident-opened has no channel "inapp": expected one of email');
  });
});
