// The template studio on the HTTP role (a real listening fastify, real PostgreSQL behind the
// role, a real SMTP server): /admin/studio refuses without FOREWARN_ADMIN_TOKEN (401) and serves
// with it, under its own CSP that lets its served script run; it has no save route; a test send
// to an address off the allow-list is refused (403) and sends nothing, one to an allowed address
// arrives by SMTP.
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { defaultTemplatesDir } from '../../lib/templates/store.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const TOKEN = 'admin-token-for-the-studio-tests-0123456789';
const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));

let db: TestDatabase;
let http: RunningHttpServer;
let smtp: TestSmtpServer;
let sender: EmailSender;
let config: Config;
/** A copy of the templates: should a save route ever appear here, it cannot touch the repository's. */
let work: string;
let dir: string;
const logs = captureLogs('info');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'forewarn-studio-http-'));
  dir = join(work, 'templates');
  await cp(defaultTemplatesDir, dir, { recursive: true });
  db = await createTestDatabase();
  smtp = await startSmtpServer();
  const shipped = await loadConfigFile(SHIPPED);
  config = { ...shipped, templates: { studio: { testSendAllow: ['*@example.com', 'ops@forewarn.test'] } } };
  sender = createEmailSender({
    smtpUrl: smtp.url,
    outboxDir: '/nonexistent',
    from: 'studio@example.com',
    logger: logs.logger,
  });
  http = await startHttpServer(
    {
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      adminToken: TOKEN,
      studio: { templatesDir: dir, email: () => sender, config: () => config },
      logger: logs.logger,
      now: Date.now,
    },
    { host: '127.0.0.1', port: 0 },
  );
});

afterAll(async () => {
  await http?.close();
  await sender?.close();
  await smtp?.close();
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${TOKEN}` };
const url = (path: string) => new URL(path, http.address);
const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
  fetch(url(path), {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('/admin/studio on the HTTP role', () => {
  it('refuses every route without the admin token, or with another', async () => {
    for (const path of ['/admin/studio', '/admin/studio/studio.js', '/admin/studio/api/catalog']) {
      const response = await fetch(url(path));
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic/);
    }
    const wrong = await fetch(url('/admin/studio'), { headers: { authorization: 'Bearer not-the-token' } });
    expect(wrong.status).toBe(401);
    const send = await post('/admin/studio/api/test-send', {}, {});
    expect(send.status).toBe(401);
    expect(smtp.messages).toHaveLength(0);
  });

  it('serves the page with the token (bearer or basic auth), read-only, under its own CSP', async () => {
    const page = await fetch(url('/admin/studio'), { headers: auth });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-readonly="true"');
    expect(html).toContain('<script src="/admin/studio/studio.js"></script>');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("'unsafe-eval'");
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    const basic = `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}`;
    const script = await fetch(url('/admin/studio/studio.js'), { headers: { authorization: basic } });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    // Elsewhere the role keeps its strict policy: no script at all.
    const health = await fetch(url('/healthz'));
    expect(health.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src/);
    expect(health.headers.get('content-security-policy')).not.toContain('script-src');
    const catalog = (await (await fetch(url('/admin/studio/api/catalog'), { headers: auth })).json()) as {
      readOnly: boolean;
      kinds: Array<{ kind: string; variables: Array<{ name: string; note: string }> }>;
    };
    expect(catalog.readOnly).toBe(true);
    expect(catalog.kinds.find((k) => k.kind === 'payment-degraded')!.variables.map((v) => v.name)).toContain(
      'payUrl',
    );
  });

  it('has no save route: a replica never rewrites its templates', async () => {
    const file = join(dir, 'payment-degraded', 'zh-CN.email.liquid');
    const before = await readFile(file, 'utf8');
    const response = await post('/admin/studio/api/save', {
      kind: 'payment-degraded',
      locale: 'zh-CN',
      channel: 'email',
      text: '---\nsubject: x\n---\nx',
    });
    expect([404, 405]).toContain(response.status);
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('previews and lints an edit without writing it', async () => {
    const response = await post('/admin/studio/api/check', {
      kind: 'payment-recovered',
      locale: 'en',
      channel: 'inapp',
      text: '---\ntitle: "{{ channelName }} is back"\n---\n{{ channelNmae }} works again.',
      data: null,
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      problems: Array<{ file: string; line: number; message: string }>;
    };
    expect(result.problems).toEqual([
      expect.objectContaining({ file: 'payment-recovered/en.inapp.liquid', line: 4 }),
    ]);
  });

  it('refuses a test send to an address off the allow-list, and sends one to an allowed address by SMTP', async () => {
    const request = {
      kind: 'payment-degraded',
      locale: 'zh-CN',
      channel: 'email',
      text: await (
        await fetch(url('/admin/studio/api/template?kind=payment-degraded&locale=zh-CN&channel=email'), {
          headers: auth,
        })
      )
        .json()
        .then((t) => (t as { text: string }).text),
      data: null,
    };
    for (const to of [
      'someone@evil.test',
      'x@sub.example.com',
      'ops@forewarn.test.evil.com',
      'not an address',
    ]) {
      const refused = await post('/admin/studio/api/test-send', { ...request, to });
      expect(refused.status, to).toBe(403);
      expect(((await refused.json()) as { message: string }).message).toContain('testSendAllow');
    }
    expect(smtp.messages).toHaveLength(0);

    const sent = await post('/admin/studio/api/test-send', { ...request, to: 'Marketing@Example.com' });
    expect(sent.status).toBe(200);
    const [message] = await smtp.waitForMessages(1);
    expect(message!.envelope.to.map((a) => a.toLowerCase())).toEqual(['marketing@example.com']);
    expect(message!.subject).toContain('[测试 TEST] 【支付提醒】微信支付');
    expect(message!.html).toContain('微信支付');
  });
});
