// The webhook channel's pure parts: its config (a bad target is refused naming it; ops targets
// must exist), production's refusals at start, each format's request with a fixed clock (the
// signatures checked against vectors computed apart, with Python's hmac as DingTalk's docs show),
// how an answer is sorted into sent, retry and failed, and who ops alerts go to.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { outcomeOf } from '../../lib/channels/webhook-channel.ts';
import {
  dingtalkSign,
  jsonSignature,
  webhookRequest,
  type WebhookMessage,
} from '../../lib/channels/webhook-formats.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { checkWebhookTargets, webhookTargetSchema } from '../../lib/config/webhooks.ts';
import { ConfigError } from '../../lib/errors.ts';
import { opsChannels, opsRecipients } from '../../lib/messages/shared.ts';

const shipped = await readFile(new URL('../../config/forewarn.yaml', import.meta.url), 'utf8');

function withWebhooks(targets: unknown[], opsWebhooks: string[] = []): string {
  const doc = parseDocument(shipped);
  doc.setIn(['notifications', 'webhooks', 'targets'], doc.createNode(targets));
  doc.setIn(['notifications', 'ops', 'webhooks'], doc.createNode(opsWebhooks));
  return String(doc);
}

function refusal(text: string): string {
  try {
    parseConfigText(text, 'variant.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the config to be refused');
}

const json = {
  id: 'sms-gateway',
  url: 'https://sms.example.com/hook',
  format: 'json',
  secretEnv: 'SMS_SECRET',
};

describe('webhook targets in the config', () => {
  it('takes valid targets with their defaults, and ops targets that exist', () => {
    const config = parseConfigText(
      withWebhooks(
        [
          json,
          { id: 'ops-wecom', urlEnv: 'OPS_WECOM_URL', format: 'wecom' },
          { id: 'dev', url: 'http://127.0.0.1:9/x', format: 'slack', blocks: true },
        ],
        ['ops-wecom'],
      ),
      'variant.yaml',
    );
    expect(config.notifications.webhooks.targets.map((t) => [t.id, t.timeoutMs, t.blocks])).toEqual([
      ['sms-gateway', 5_000, false],
      ['ops-wecom', 5_000, false],
      ['dev', 5_000, true],
    ]);
    expect(config.notifications.ops.webhooks).toEqual(['ops-wecom']);
  });

  it('ships with no targets, and ops alerts by email only', () => {
    const config = parseConfigText(shipped, 'forewarn.yaml');
    expect(config.notifications.webhooks.targets).toEqual([]);
    expect(config.notifications.ops.webhooks).toEqual([]);
  });

  it("refuses a bad target with a message naming it, what was expected, and never the URL's secret part", () => {
    const message = refusal(
      withWebhooks([
        { ...json, url: 'http://sms.example.com/hook?token=s3cret' },
        { id: 'robot', url: 'https://oapi.dingtalk.com/robot/send?access_token=t', format: 'dingtalk' },
        {
          id: 'chat',
          url: 'https://hooks.slack.com/services/T/B/x',
          format: 'slack',
          secretEnv: 'CHAT_SECRET',
        },
        { id: 'both', url: 'https://a.example.com', urlEnv: 'B_URL', format: 'wecom' },
        { ...json, id: 'robot' },
        { ...json, id: 'slow', timeoutMs: 120_000 },
      ]),
    );
    expect(message).toContain('notifications.webhooks.targets.0.url (line ');
    expect(message).toContain(
      'expected an https URL (plain http only to localhost, for a receiver in development) (target "sms-gateway"), got "http://sms.example.com/…"',
    );
    expect(message).not.toContain('s3cret');
    expect(message).toMatch(
      /notifications\.webhooks\.targets\.1\.secretEnv.*: expected the environment variable holding the dingtalk signing secret \(target "robot"\), got nothing/,
    );
    expect(message).toMatch(
      /targets\.2\.secretEnv.*: expected none: slack requests are not signed \(its URL is the secret\) \(target "chat"\), got "CHAT_SECRET"/,
    );
    expect(message).toMatch(
      /targets\.3\.url.*: expected either url or urlEnv .*\(target "both"\), got "both"/,
    );
    expect(message).toMatch(
      /targets\.4\.id.*: expected each target id once \(target "robot"\), got "robot twice"/,
    );
    expect(message).toMatch(/targets\.5\.timeoutMs.*: expected a value <= 60000/);
  });

  it('refuses an ops target that no target has, listing those there are', () => {
    expect(refusal(withWebhooks([json], ['ops-chat']))).toMatch(
      /notifications\.ops\.webhooks\.0.*: expected the id of a target in notifications\.webhooks\.targets \("sms-gateway"\), got "ops-chat"/,
    );
  });
});

describe('production at start', () => {
  const target = (t: Record<string, unknown>) => webhookTargetSchema.parse({ ...json, ...t });

  it('refuses plain http and unset secret or URL variables, by name, never a value', () => {
    const targets = [
      target({ id: 'local', url: 'http://localhost:8080/x' }),
      target({ id: 'unsigned', secretEnv: 'UNSET_SECRET' }),
      target({ id: 'nourl', url: undefined, urlEnv: 'UNSET_URL', format: 'wecom', secretEnv: undefined }),
      target({ id: 'fine', secretEnv: 'SET_SECRET' }),
    ];
    const secret = (v: string) => ({ SET_SECRET: 'value-1', SMS_SECRET: 'value-2' })[v];
    expect(() => checkWebhookTargets(targets, { production: false, secret })).not.toThrow();
    let message = '';
    try {
      checkWebhookTargets(targets, { production: true, secret });
    } catch (error) {
      message = (error as Error).message;
      expect((error as { code?: string }).code).toBe('FW_ENV_MISSING');
    }
    expect(message.split('\n')).toEqual([
      'notifications.webhooks.targets "local": url: expected https with NODE_ENV=production, got something else',
      'environment variable UNSET_SECRET: required with NODE_ENV=production by webhook target "unsigned": expected its json signing secret, got nothing',
      'environment variable UNSET_URL: required with NODE_ENV=production by webhook target "nourl": expected its https URL, got nothing',
    ]);
    expect(message).not.toContain('value-');
  });
});

const message: WebhookMessage = {
  id: 'cause:1:ops-incident-opened:webhook:ops',
  kind: 'ops-incident-opened',
  category: 'ops',
  audience: 'ops',
  userId: null,
  locale: 'zh-CN',
  subject: '支付渠道异常',
  text: '第一段\n\n第二段',
  link: null,
};
const NOW = Date.UTC(2026, 11, 4, 21, 0, 0, 123);

describe('the formats, with a fixed clock', () => {
  it('json: t in seconds, v1 the HMAC of "<t>.<body>", in both headers', () => {
    // Python: hmac.new(b'whsec', b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    expect(jsonSignature('whsec', 1_700_000_000, '{"a":1}')).toBe(
      '8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032',
    );
    const request = webhookRequest('json', { url: 'https://h.example.com/x' }, message, {
      secret: 'whsec',
      now: NOW,
    });
    const t = Math.floor(NOW / 1000);
    expect(request.headers['x-forewarn-timestamp']).toBe(String(t));
    expect(request.headers['x-forewarn-signature']).toBe(
      `t=${t},v1=${jsonSignature('whsec', t, request.body)}`,
    );
    expect(JSON.parse(request.body)).toMatchObject({ id: message.id, sentAt: '2026-12-04T21:00:00.000Z' });
    expect(() =>
      webhookRequest('json', { url: 'https://h.example.com/x' }, message, { secret: undefined, now: NOW }),
    ).toThrow('the json format signs its requests and no secret is set');
  });

  it("dingtalk: sign as its docs compute it, timestamp in milliseconds, the robot's token kept", () => {
    // Python, as DingTalk's docs: urllib.parse.quote_plus(base64.b64encode(hmac.new(b'SECabc',
    // b'1700000000000\nSECabc', hashlib.sha256).digest()))
    expect(dingtalkSign('SECabc', '1700000000000')).toBe('jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM=');
    const request = webhookRequest(
      'dingtalk',
      { url: 'https://oapi.dingtalk.com/robot/send?access_token=abc' },
      message,
      { secret: 'SECabc', now: 1_700_000_000_000 },
    );
    expect(request.url).toBe(
      'https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000&sign=jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM%3D',
    );
    expect(JSON.parse(request.body)).toEqual({
      msgtype: 'markdown',
      markdown: { title: '支付渠道异常', text: '**支付渠道异常**\n\n第一段\n\n第二段' },
    });
  });

  it('wecom: markdown content cut to 4096 bytes at a character boundary', () => {
    const long = { ...message, text: '告'.repeat(3_000) };
    const { body } = webhookRequest(
      'wecom',
      { url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k' },
      long,
      {
        secret: undefined,
        now: NOW,
      },
    );
    const content = (JSON.parse(body) as { markdown: { content: string } }).markdown.content;
    expect(Buffer.byteLength(content, 'utf8')).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(content, 'utf8')).toBeGreaterThan(4090);
    expect(content.endsWith('告…')).toBe(true);
  });
});

describe('an answer', () => {
  const name = 'webhook "x"';
  it.each([
    [200, null, '', { status: 'sent' }],
    [204, null, '', { status: 'sent' }],
    [200, null, '{"errcode":0,"errmsg":"ok"}', { status: 'sent' }],
    [200, null, '{"errcode":130101,"errmsg":"send too fast"}', { status: 'retry' }],
    [200, null, '{"errcode":310000,"errmsg":"sign not match"}', { status: 'failed' }],
    [500, null, '', { status: 'retry', reason: 'webhook "x" answered 500' }],
    [503, '30', '', { status: 'retry', afterMs: 30_000 }],
    [429, '7200', '', { status: 'retry', afterMs: 3_600_000 }],
    [408, null, '', { status: 'retry' }],
    [400, null, 'bad\n  request', { status: 'failed', reason: 'webhook "x" answered 400: bad request' }],
    [404, null, 'no_service', { status: 'failed' }],
    [302, null, '', { status: 'failed', reason: 'webhook "x" answered 302 (redirects are not followed)' }],
    // A gateway echoing the recipient: the reason, kept and shown to ops, has it masked.
    [
      400,
      null,
      '{"error":"unreachable","to":"13800138000","email":"zhang.san@example.com"}',
      {
        status: 'failed',
        reason:
          'webhook "x" answered 400: {"error":"unreachable","to":"138***00","email":"z***@example.com"}',
      },
    ],
  ] as const)('%i (Retry-After %s, body %j) is %o', (status, retryAfter, body, expected) => {
    expect(outcomeOf(name, status, retryAfter, body)).toMatchObject(expected);
  });
});

describe('ops alerts', () => {
  it('go by email to each ops address and by webhook to each ops target, each on its own channel', () => {
    const config = parseConfigText(withWebhooks([json], ['sms-gateway']), 'variant.yaml');
    expect(opsChannels()).toEqual(['email', 'webhook']);
    expect(opsRecipients(config)).toEqual([
      ...config.notifications.ops.emails.map((address) => ({
        userId: null,
        address,
        locale: config.notifications.ops.locale,
        channels: ['email'],
      })),
      {
        userId: null,
        address: 'sms-gateway',
        locale: config.notifications.ops.locale,
        channels: ['webhook'],
      },
    ]);
  });
});
