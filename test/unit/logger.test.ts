// Logs are data: JSON lines with a level label and the child logger's component, personal data
// masked and secrets censored before anything is written.
import { describe, expect, it } from 'vitest';
import { maskEmail, maskId } from '../../lib/logger.ts';
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

describe('secrets', () => {
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
