// Logs are data: JSON lines with a level label and the child logger's component, personal data
// masked and secrets censored before anything is written.
import { describe, expect, it } from 'vitest';
import { maskEmail, maskId, maskPhone, maskText } from '../../lib/logger.ts';
import { captureLogs } from '../support/services.ts';

const EMAIL = 'zhang.san@example.com';
const OTHER_EMAIL = 'li.si.wu@example.org';
const USER_ID = 'u-1002345';

function only(lines: Array<Record<string, unknown>>): Record<string, unknown> {
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('log lines', () => {
  it('are JSON with a level label, time, pid and message', () => {
    const { logger, lines } = captureLogs();
    logger.info({ channel: 'alipay' }, 'hello');
    logger.warn('careful');
    logger.error('broken');
    const [info, warn, error] = lines();
    expect(info).toMatchObject({ level: 'info', msg: 'hello', channel: 'alipay', pid: process.pid });
    expect(warn).toMatchObject({ level: 'warn', msg: 'careful' });
    expect(error).toMatchObject({ level: 'error', msg: 'broken' });
    expect(typeof info!.time).toBe('string');
    expect(Number.isNaN(Date.parse(info!.time as string))).toBe(false);
  });

  it('carry the component of a child logger, and of its children', () => {
    const { logger, lines } = captureLogs();
    const child = logger.child({ component: 'scheduler' });
    child.info('tick');
    child.child({ detector: 'payment-health' }).info('nested');
    logger.info('root');
    const [tick, nested, root] = lines();
    expect(tick).toMatchObject({ component: 'scheduler', msg: 'tick' });
    expect(nested).toMatchObject({ component: 'scheduler', detector: 'payment-health', msg: 'nested' });
    expect(root).not.toHaveProperty('component');
  });

  it('respect the level', () => {
    const { logger, lines } = captureLogs('warn');
    logger.info('dropped');
    logger.debug('dropped too');
    logger.warn('kept');
    expect(lines().map((l) => l.msg)).toEqual(['kept']);
  });
});

describe('personal data', () => {
  it('masks email and to, keeping the domain', () => {
    const { logger, lines } = captureLogs();
    logger.info({ email: EMAIL, to: OTHER_EMAIL }, 'mail sent');
    const line = only(lines());
    expect(line.email).toBe(maskEmail(EMAIL));
    expect(line.to).toBe(maskEmail(OTHER_EMAIL));
    expect(line.email).toMatch(/@example\.com$/);
    expect(line.to).toMatch(/@example\.org$/);
    const raw = JSON.stringify(line);
    expect(raw).not.toContain('zhang.san');
    expect(raw).not.toContain('li.si.wu');
  });

  it('masks user ids and phone numbers', () => {
    const { logger, lines } = captureLogs();
    logger.info({ userId: USER_ID, user_id: 'u-9876543', phone: '13800138000' }, 'user notified');
    const line = only(lines());
    expect(line.userId).toBe(maskId(USER_ID));
    expect(line.userId).not.toBe(USER_ID);
    expect(JSON.stringify(line)).not.toContain(USER_ID);
    expect(JSON.stringify(line)).not.toContain('u-9876543');
    expect(JSON.stringify(line)).not.toContain('13800138000');
  });

  it('masks personal data bound to a child logger', () => {
    const { logger, lines } = captureLogs();
    logger.child({ component: 'notify', userId: USER_ID, email: EMAIL }).info('sending');
    const raw = JSON.stringify(only(lines()));
    expect(raw).not.toContain(USER_ID);
    expect(raw).not.toContain('zhang.san');
  });

  it('leaves other keys and the caller’s object alone', () => {
    const { logger, lines } = captureLogs();
    const fields = { email: EMAIL, channel: 'wechat', region: 'CN-GD', count: 3 };
    logger.info(fields, 'x');
    expect(only(lines())).toMatchObject({ channel: 'wechat', region: 'CN-GD', count: 3 });
    expect(fields.email).toBe(EMAIL);
  });

  it('maskEmail and maskId keep enough to correlate, not to identify', () => {
    expect(maskEmail(EMAIL)).toBe('z***@example.com');
    expect(maskEmail('not-an-email')).toBe(maskId('not-an-email'));
    expect(maskEmail('not-an-email')).not.toContain('an-em');
    expect(maskId(USER_ID)).toBe(`${USER_ID.slice(0, 2)}***${USER_ID.slice(-2)}`);
    expect(maskId('u-12')).toBe('***');
  });
});

describe('personal data at any depth and in text', () => {
  it('masks a fixed nested structure: objects, arrays, errors and the message', () => {
    const { logger, lines } = captureLogs();
    const smtpError = Object.assign(new Error(`550 5.1.1 <${EMAIL}>: mailbox unavailable`), {
      code: 'EENVELOPE',
      responseCode: 550,
      rejected: [EMAIL],
    });
    const fields = {
      component: 'deliver',
      jobId: 'deliver@fanout@8d1e3c1a-5b7f-4c8e-9f3a-2b6d4e8f0a1c-3@1',
      job: { data: { to: EMAIL, userId: USER_ID, locale: 'zh-CN' }, attempts: 2 },
      recipients: [
        { userId: 'u-0000101', email: OTHER_EMAIL },
        { userId: 'u-0000102', phone: '13912345678' },
      ],
      to: [EMAIL, OTHER_EMAIL],
      messageId: '<3f2a9c0e@forewarn.example.com>',
      failures: [{ id: '17', err: new Error(`timeout talking to relay for ${OTHER_EMAIL}`) }],
      err: smtpError,
    };
    logger.warn(fields, `delivery to ${EMAIL} (tel. +86 138 0013 8000) failed`);
    const line = only(lines());
    const { time, pid, err, failures, ...rest } = line as Record<string, unknown> & {
      err: Record<string, unknown>;
      failures: Array<{ id: string; err: Record<string, unknown> }>;
    };
    expect(typeof time).toBe('string');
    expect(pid).toBe(process.pid);
    expect(rest).toEqual({
      level: 'warn',
      component: 'deliver',
      jobId: 'deliver@fanout@8d1e3c1a-5b7f-4c8e-9f3a-2b6d4e8f0a1c-3@1',
      job: { data: { to: 'z***@example.com', userId: 'u-***45', locale: 'zh-CN' }, attempts: 2 },
      recipients: [
        { userId: 'u-***01', email: 'l***@example.org' },
        { userId: 'u-***02', phone: '13***78' },
      ],
      to: ['z***@example.com', 'l***@example.org'],
      messageId: '<3f2a9c0e@forewarn.example.com>',
      msg: 'delivery to z***@example.com (tel. +86***00) failed',
    });
    expect(err).toMatchObject({
      type: 'Error',
      message: '550 5.1.1 <z***@example.com>: mailbox unavailable',
      code: 'EENVELOPE',
      responseCode: 550,
      rejected: ['z***@example.com'],
    });
    expect(err.stack).toMatch(/^Error: 550 5\.1\.1 <z\*\*\*@example\.com>: mailbox unavailable\n\s+at /);
    expect(failures).toEqual([
      {
        id: '17',
        err: expect.objectContaining({
          type: 'Error',
          message: 'timeout talking to relay for l***@example.org',
        }),
      },
    ]);
    const raw = JSON.stringify(line);
    for (const secret of ['zhang.san', 'li.si.wu', USER_ID, '0000101', '13912345678', '0013 8000']) {
      expect(raw).not.toContain(secret);
    }
    // The caller's objects are untouched.
    expect(fields.job.data.to).toBe(EMAIL);
    expect(fields.err).toBe(smtpError);
    expect(smtpError.message).toContain(EMAIL);
  });

  it('masks an Error logged on its own, its message and its cause', () => {
    const { logger, lines } = captureLogs();
    const cause = new Error(`user ${OTHER_EMAIL} not found`);
    logger.error(new Error(`could not notify ${EMAIL}`, { cause }));
    const line = only(lines()) as { msg: string; err: { message: string; stack: string } };
    expect(line.msg).toBe('could not notify z***@example.com');
    expect(line.err.message).toBe('could not notify z***@example.com: user l***@example.org not found');
    expect(line.err.stack).toContain('caused by: Error: user l***@example.org not found');
    expect(JSON.stringify(line)).not.toMatch(/zhang\.san|li\.si\.wu/);
  });

  it('masks nested personal data bound to a child logger', () => {
    const { logger, lines } = captureLogs();
    logger
      .child({ component: 'fanout', job: { data: { to: EMAIL, userId: USER_ID } } })
      .info({ note: `for ${EMAIL}` }, 'queued');
    const line = only(lines());
    expect(line).toMatchObject({
      component: 'fanout',
      job: { data: { to: 'z***@example.com', userId: 'u-***45' } },
      note: 'for z***@example.com',
    });
  });

  it('leaves what only looks like an address or a number alone', () => {
    const kept = [
      'payment-health@69e84bc9-2f5a-4ff5-9b1d-bf46aae8f2eb@2026-03-02T10:00:15.000Z',
      'deliver@sweep@69e84bc9-2f5a-4ff5-9b1d-bf46aae8f2eb@2026-03-02T10:00:30.000Z@3',
      '2026-11-22T09:51:05.000Z',
      'epoch 1764000000000 ms, 1764000000 s',
      'connect ECONNREFUSED 127.0.0.1:6379',
      'incident:12:payment-degraded:email:u0001',
      'event 8d1e3c1a-5b7f-4c8e-9f3a-2b6d4e8f0a1c',
      'ticks at +08:00, 13 of 20 windows',
    ];
    for (const text of kept) expect(maskText(text)).toBe(text);
  });

  it('masks addresses, phone numbers and URL passwords in text', () => {
    expect(maskText(`to ${EMAIL}, cc ${OTHER_EMAIL}`)).toBe('to z***@example.com, cc l***@example.org');
    expect(maskText('call 13800138000 or 138-0013-8000 or +1 415 555 0100')).toBe(
      'call 138***00 or 138***00 or +14***00',
    );
    expect(maskText('connect smtp://mailer:s3cr3t-pw@smtp.example.com:587 failed')).not.toContain('s3cr3t');
    expect(maskPhone('+8613800138000')).toBe('+86***00');
  });
});

describe('secrets', () => {
  it('censors secrets at any depth and in text', () => {
    const { logger, lines } = captureLogs();
    logger.warn(
      {
        a: { b: { c: { password: 'deep-pw', linkSecret: 'deep-link-secret' } } },
        list: [{ redisUrl: 'redis://:list-pw@h:6379' }],
      },
      'reconnecting to postgres://fw:msg-pw@db.internal:5432/fw',
    );
    const line = only(lines());
    expect(line).toMatchObject({
      a: { b: { c: { password: '[secret]', linkSecret: '[secret]' } } },
      list: [{ redisUrl: '[secret]' }],
      msg: 'reconnecting to postgres://fw:***@db.internal:5432/fw',
    });
    const raw = JSON.stringify(line);
    for (const secret of ['deep-pw', 'deep-link-secret', 'list-pw', 'msg-pw'])
      expect(raw).not.toContain(secret);
  });

  it('censors a DKIM private key wherever it sits', () => {
    const { logger, lines } = captureLogs();
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
    logger.info({ dkim: { domainName: 'example.com', privateKey: pem }, env: { dkimPrivateKey: pem } }, 'x');
    const line = only(lines());
    expect(line).toMatchObject({
      dkim: { domainName: 'example.com', privateKey: '[secret]' },
      env: { dkimPrivateKey: '[secret]' },
    });
    expect(JSON.stringify(line)).not.toContain('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC');
  });

  it('censors passwords and connection URLs, top level and one level down', () => {
    const { logger, lines } = captureLogs();
    logger.warn(
      {
        password: 'hunter2',
        smtp: { password: 'smtp-pw', host: 'smtp.example.com' },
        databaseUrl: 'postgres://fw:db-pw@h/db',
        redisUrl: 'redis://:redis-pw@h:6379',
        smtpUrl: 'smtp://u:smtp-url-pw@h:587',
        env: { databaseUrl: 'postgres://fw:nested-db-pw@h/db' },
      },
      'connecting',
    );
    const line = only(lines());
    expect(line).toMatchObject({
      password: '[secret]',
      smtp: { password: '[secret]', host: 'smtp.example.com' },
      databaseUrl: '[secret]',
      redisUrl: '[secret]',
      smtpUrl: '[secret]',
      env: { databaseUrl: '[secret]' },
    });
    const raw = JSON.stringify(line);
    for (const secret of ['hunter2', 'smtp-pw', 'db-pw', 'redis-pw', 'smtp-url-pw', 'nested-db-pw']) {
      expect(raw).not.toContain(secret);
    }
  });

  it('censors secrets bound to a child logger', () => {
    const { logger, lines } = captureLogs();
    logger.child({ component: 'db', databaseUrl: 'postgres://fw:bound-pw@h/db' }).info('pool ready');
    const line = only(lines());
    expect(line.component).toBe('db');
    expect(JSON.stringify(line)).not.toContain('bound-pw');
  });
});
