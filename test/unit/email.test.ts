// The email channel's pure parts: how nodemailer's failures are sorted into retryable and
// permanent, stable Message-IDs, the cheap recipient check, outbox file names, and the options
// refused before anything connects.
import { describe, expect, it } from 'vitest';
import {
  classifySendError,
  createEmailSender,
  dkimSigning,
  DeliveryError,
  isAddressRejection,
  isPlausibleEmailAddress,
  messageIdFor,
  outboxFileName,
} from '../../lib/channels/email.ts';
import { ForewarnError } from '../../lib/errors.ts';
import { captureLogs } from '../support/services.ts';

/** An error shaped like the ones nodemailer's SMTP connection and pool produce. */
function nodemailerError(message: string, fields: Record<string, unknown>): Error {
  return Object.assign(new Error(message), fields);
}

/** nodemailer's _formatError: the reply's code becomes responseCode, with command and response. */
function smtpReply(code: string, response: string, command: string): Error {
  const responseCode = Number(response.slice(0, 3));
  return nodemailerError(`${command} failed: ${response}`, {
    code,
    response,
    responseCode,
    command,
    permanent: responseCode >= 500 && responseCode !== 503,
  });
}

describe('classifySendError', () => {
  it.each([
    ['421 at connect', smtpReply('ECONNECTION', '421 4.3.2 Service not available, closing channel', 'CONN')],
    ['450 at RCPT TO', smtpReply('EENVELOPE', '450 4.2.1 Mailbox busy', 'RCPT TO')],
    ['451 at DATA', smtpReply('EMESSAGE', '451 4.3.0 Local error in processing', 'DATA')],
    ['452 at RCPT TO', smtpReply('EENVELOPE', '452 4.3.1 Insufficient system storage', 'RCPT TO')],
    ['454 at AUTH', smtpReply('EAUTH', '454 4.7.0 Temporary authentication failure', 'AUTH PLAIN')],
    ['503 at DATA', smtpReply('EENVELOPE', '503 5.5.1 Bad sequence of commands', 'DATA')],
  ])('treats a %s reply as retryable', (_label, error) => {
    const classified = classifySendError(error, { messageId: '<m1@forewarn>' });
    expect(classified).toBeInstanceOf(DeliveryError);
    expect(classified).toBeInstanceOf(ForewarnError);
    expect(classified.retryable).toBe(true);
    expect(classified.code).toBe('FW_DELIVERY_RETRYABLE');
    expect(classified.responseCode).toBe((error as Error & { responseCode?: number }).responseCode);
    expect(classified.reason).toMatch(/^(auth failed: )?smtp \d{3}/);
    expect(classified.cause).toBe(error);
  });

  it.each([
    [
      '550 at RCPT TO',
      smtpReply('EENVELOPE', '550 5.1.1 Mailbox unavailable', 'RCPT TO'),
      'smtp 550 at RCPT TO',
    ],
    [
      '553 at RCPT TO',
      smtpReply('EENVELOPE', '553 5.1.3 Bad destination address', 'RCPT TO'),
      'smtp 553 at RCPT TO',
    ],
    ['554 at DATA', smtpReply('EMESSAGE', '554 5.7.1 Message rejected as spam', 'DATA'), 'smtp 554 at DATA'],
    [
      '552 at MAIL FROM',
      smtpReply('EENVELOPE', '552 5.3.4 Message too big', 'MAIL FROM'),
      'smtp 552 at MAIL FROM',
    ],
  ])('treats a %s reply as permanent', (_label, error, reason) => {
    const classified = classifySendError(error);
    expect(classified.retryable).toBe(false);
    expect(classified.code).toBe('FW_DELIVERY_PERMANENT');
    expect(classified.reason).toBe(reason);
  });

  it('treats refused credentials as permanent and says to check them', () => {
    const classified = classifySendError(
      smtpReply('EAUTH', '535 5.7.8 Authentication credentials invalid', 'AUTH PLAIN'),
    );
    expect(classified.retryable).toBe(false);
    expect(classified.reason).toBe('auth failed: smtp 535 at AUTH PLAIN, check the SMTP credentials');
    expect(
      classifySendError(nodemailerError('Missing credentials for "PLAIN"', { code: 'EAUTH' })),
    ).toMatchObject({
      retryable: false,
      reason: 'auth failed, check the SMTP credentials',
    });
  });

  it.each([
    [
      'a dropped connection',
      nodemailerError('Connection closed unexpectedly', { code: 'ECONNECTION', command: 'CONN' }),
      'connection dropped',
    ],
    [
      'a greeting timeout',
      nodemailerError('Greeting never received', { code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT' }),
      'timeout (greeting timeout)',
    ],
    [
      'a refused connection',
      nodemailerError('connect ECONNREFUSED 127.0.0.1:25', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }),
      'socket error (ECONNREFUSED)',
    ],
    [
      'a reset socket',
      nodemailerError('read ECONNRESET', { code: 'ECONNRESET' }),
      'connection error ECONNRESET',
    ],
    [
      'a failed DNS lookup',
      nodemailerError('getaddrinfo ENOTFOUND smtp.example.invalid', { code: 'EDNS' }),
      'dns lookup failed',
    ],
    ['a pool closed with the message queued', new Error('Connection pool was closed'), 'pool closed'],
    [
      'a pool closed before the send',
      nodemailerError('Connection pool was closed', { code: 'ECONNECTION' }),
      'pool closed',
    ],
    [
      'a pool that gave up requeueing',
      nodemailerError('Reached maximum number of retries after connection was closed', {
        code: 'ECONNECTION',
      }),
      'connection dropped repeatedly',
    ],
    ['an abort', nodemailerError('Message sending aborted', { code: 'EABORT' }), 'aborted'],
  ])('treats %s as retryable', (_label, error, reason) => {
    const classified = classifySendError(error);
    expect(classified.retryable).toBe(true);
    expect(classified.reason).toBe(reason);
    expect(classified.responseCode).toBeUndefined();
  });

  it.each([
    [
      'an invalid recipient',
      nodemailerError('Invalid recipient "a b"', { code: 'EENVELOPE', command: 'API' }),
      'invalid envelope address',
    ],
    [
      'an empty message',
      nodemailerError('Empty message', { code: 'EMESSAGE', command: 'API' }),
      'message refused',
    ],
    [
      'too many recipients',
      nodemailerError('Too many recipients', { code: 'EMAXRECIPIENTS' }),
      'permanent transport error EMAXRECIPIENTS',
    ],
  ])('treats %s as permanent', (_label, error, reason) => {
    expect(classifySendError(error)).toMatchObject({ retryable: false, reason });
  });

  it('counts an error of unknown shape as retryable, since the job bounds its attempts', () => {
    expect(classifySendError(new TypeError('boom'))).toMatchObject({
      retryable: true,
      reason: 'unclassified error',
    });
    expect(classifySendError('a string')).toMatchObject({ retryable: true, reason: 'unclassified error' });
    expect(classifySendError(undefined)).toMatchObject({ retryable: true });
  });

  it('returns a DeliveryError unchanged', () => {
    const error = new DeliveryError('x', { retryable: false, reason: 'invalid recipient address' });
    expect(classifySendError(error)).toBe(error);
  });

  it('says which message, what happened and what the server said, with addresses masked', () => {
    const classified = classifySendError(
      smtpReply('EENVELOPE', '550 5.1.1 <zhang.san@example.com>: Recipient address rejected', 'RCPT TO'),
      { messageId: '<abc@forewarn>' },
    );
    expect(classified.message).toBe(
      'email <abc@forewarn>: smtp 550 at RCPT TO (permanent): server replied "550 5.1.1 <z***@example.com>: Recipient address rejected"',
    );
    expect(classified.message).not.toContain('zhang.san');
  });
});

describe('messageIdFor', () => {
  it('derives the same id from the same key, a different one from another key', () => {
    const id = messageIdFor('incident:42:user:7', 'forewarn.example.com');
    expect(id).toMatch(/^<[0-9a-f]{64}@forewarn\.example\.com>$/);
    expect(messageIdFor('incident:42:user:7', 'forewarn.example.com')).toBe(id);
    expect(messageIdFor('incident:42:user:8', 'forewarn.example.com')).not.toBe(id);
  });

  it('refuses a domain that is not a host name', () => {
    expect(() => messageIdFor('k', 'bad domain')).toThrow(/expected a host name/);
    expect(() => messageIdFor('k', 'a@b')).toThrow(ForewarnError);
    expect(() => messageIdFor('k', '')).toThrow(ForewarnError);
  });
});

describe('isPlausibleEmailAddress', () => {
  it.each(['zhang.san@example.com', 'a+tag@sub.example.co', 'user_1@xn--fiqs8s.cn', '用户@例子.中国'])(
    'accepts %s',
    (address) => expect(isPlausibleEmailAddress(address)).toBe(true),
  );

  it.each([
    '',
    'plainaddress',
    '@example.com',
    'user@',
    'user@localhost',
    'user@@example.com',
    'two words@example.com',
    'Name <user@example.com>',
    'a@example.com, b@example.com',
    'a@example.com;b@example.com',
    '.user@example.com',
    'us..er@example.com',
    'user@example..com',
    'user@example.com\r\nBcc: x@example.com',
    `${'a'.repeat(65)}@example.com`,
    `a@${'b'.repeat(250)}.com`,
  ])('refuses %j', (address) => expect(isPlausibleEmailAddress(address)).toBe(false));

  it('refuses a value that is not a string, such as a missing address', () => {
    expect(isPlausibleEmailAddress(null as unknown as string)).toBe(false);
    expect(isPlausibleEmailAddress(undefined as unknown as string)).toBe(false);
  });
});

describe('outboxFileName', () => {
  it('uses a plain message id as the file name', () => {
    expect(outboxFileName('<abc123@forewarn.example.com>')).toBe('abc123@forewarn.example.com.eml');
  });

  it('hashes an id that could escape the directory or is not a plain name', () => {
    for (const id of ['<../../etc/passwd@x>', '<a/b@x>', '<..@x>', '<a b@x>']) {
      expect(outboxFileName(id)).toMatch(/^[0-9a-f]{64}\.eml$/);
    }
    expect(outboxFileName('<a/b@x>')).not.toBe(outboxFileName('<a_b@x>'));
  });
});

describe('createEmailSender', () => {
  const base = () => ({
    outboxDir: '/tmp/forewarn-unused',
    from: 'Forewarn <noreply@example.com>',
    logger: captureLogs().logger,
  });

  it('refuses an SMTP URL of another scheme, without echoing its password', () => {
    const attempt = () => createEmailSender({ ...base(), smtpUrl: 'http://user:hunter2@mail.example.com' });
    expect(attempt).toThrow(ForewarnError);
    expect(attempt).toThrow(/smtpUrl: expected a URL such as smtp:\/\//);
    try {
      attempt();
    } catch (error) {
      expect((error as ForewarnError).code).toBe('FW_EMAIL_CONFIG_INVALID');
      expect((error as Error).message).not.toContain('hunter2');
    }
  });

  it('refuses a from that is not one address', () => {
    expect(() => createEmailSender({ ...base(), from: 'not an address' })).toThrow(
      /email from: expected one address/,
    );
    expect(() => createEmailSender({ ...base(), from: 'a@example.com, b@example.com' })).toThrow(
      ForewarnError,
    );
  });

  it('refuses pool sizes and timeouts that are not positive integers', () => {
    const smtpUrl = 'smtp://127.0.0.1:2525';
    expect(() => createEmailSender({ ...base(), smtpUrl, pool: { maxConnections: 0 } })).toThrow(
      'email pool.maxConnections: expected a positive integer, got 0',
    );
    expect(() => createEmailSender({ ...base(), timeouts: { sendMs: -1 } })).toThrow(/timeouts.sendMs/);
  });

  it('logs the SMTP server without its password', async () => {
    const { logger, lines } = captureLogs();
    const sender = createEmailSender({ ...base(), logger, smtpUrl: 'smtp://mailer:hunter2@127.0.0.1:2525' });
    expect(sender.kind).toBe('smtp');
    await sender.close();
    const text = JSON.stringify(lines());
    expect(text).toContain('smtp://mailer:***@127.0.0.1:2525');
    expect(text).not.toContain('hunter2');
  });
});

describe('dkimSigning', () => {
  const key = '-----BEGIN PRIVATE KEY-----\n(checked by lib/env.ts)\n-----END PRIVATE KEY-----\n';
  const settings = { domainName: 'notify.example.com', keySelector: 'fw2026' };

  it('is off with neither a key nor a config, and signs with both', () => {
    expect(dkimSigning(undefined, undefined)).toBeUndefined();
    expect(dkimSigning(key, settings)).toEqual({ ...settings, privateKey: key });
  });

  it('refuses a config without a key, naming both variables and the config key', () => {
    expect(() => dkimSigning(undefined, settings)).toThrow(
      /^notifications\.email\.dkim is set \(domainName "notify\.example\.com", keySelector "fw2026"\) but there is no key to sign with: expected the environment variable FOREWARN_DKIM_PRIVATE_KEY \(the PEM\) or FOREWARN_DKIM_PRIVATE_KEY_FILE/,
    );
  });

  it('refuses a key without a config, never showing the key', () => {
    let error: unknown;
    try {
      dkimSigning(key, undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ForewarnError);
    expect((error as ForewarnError).code).toBe('FW_EMAIL_CONFIG_INVALID');
    expect((error as Error).message).toMatch(
      /FOREWARN_DKIM_PRIVATE_KEY.* but the config has no notifications\.email\.dkim: expected notifications\.email\.dkim: \{ domainName/,
    );
    expect((error as Error).message).not.toContain('checked by');
  });
});

describe('isAddressRejection', () => {
  it.each([
    [550, '550 5.1.1 <a@example.com>: no such user', 'RCPT TO', true],
    [550, '550 5.1.2 bad destination domain', 'RCPT TO', true],
    [553, '553 5.1.3 malformed address', 'RCPT TO', true],
    [550, '550 5.1.1 no such user', 'DATA', true],
    [550, '550 mailbox unavailable', 'RCPT TO', true],
    [551, '551 user not local', 'RCPT TO', true],
    [553, '553 mailbox name not allowed', 'RCPT TO', true],
    [550, '550 5.7.1 relaying denied', 'RCPT TO', false],
    [554, '554 5.7.1 message refused as spam', 'DATA', false],
    [552, '552 5.2.2 mailbox full', 'RCPT TO', false],
    [550, '550 message refused', 'DATA', false],
    [554, '554 transaction failed', 'RCPT TO', false],
    [552, '552 message too big', 'DATA', false],
  ])('%i %j at %s → %s', (code, response, command, expected) => {
    expect(isAddressRejection(code, response, command)).toBe(expected);
  });

  it('is what classifySendError records on a permanent failure, never on a temporary one', () => {
    const bounce = classifySendError({
      code: 'EENVELOPE',
      responseCode: 550,
      response: '550 5.1.1 no such user',
      command: 'RCPT TO',
    });
    expect(bounce).toMatchObject({
      retryable: false,
      addressRejected: true,
      reason: 'smtp 550 at RCPT TO',
    });
    const later = classifySendError({
      code: 'EENVELOPE',
      responseCode: 450,
      response: '450 4.1.1 mailbox busy',
      command: 'RCPT TO',
    });
    expect(later).toMatchObject({ retryable: true, addressRejected: false });
    const spam = classifySendError({
      code: 'EMESSAGE',
      responseCode: 554,
      response: '554 5.7.1 spam',
      command: 'DATA',
    });
    expect(spam).toMatchObject({ retryable: false, addressRejected: false, reason: 'smtp 554 at DATA' });
    expect(classifySendError({ code: 'ETIMEDOUT' })).toMatchObject({ addressRejected: false });
  });
});
