// DKIM signing against a real SMTP server (test/support/smtp.ts) and a real verifier (mailauth):
// a configured key signs every message, its List-Unsubscribe headers included (RFC 8058), the
// signature verifies with the public key published at <selector>._domainkey.<domain>, and a
// message changed after signing does not. Without a key nothing is signed.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
// The verifier module itself: mailauth's index needs a newer undici than Node 20 has.
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmailSender,
  dkimSigning,
  messageIdFor,
  type DkimSigning,
  type EmailMessage,
  type EmailSender,
} from '../../lib/channels/email.ts';
import { captureLogs } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const FROM = 'Forewarn <noreply@notify.example.com>';
const DOMAIN = 'notify.example.com';
const SELECTOR = 'fw2026';

let privateKeyPem: string;
let publicKeyTxt: string;
let dkim: DkimSigning;

beforeAll(() => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // The TXT record an operator publishes: the SubjectPublicKeyInfo, DER, in base64.
  publicKeyTxt = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
  dkim = dkimSigning(privateKeyPem, { domainName: DOMAIN, keySelector: SELECTOR })!;
});

/** DNS as the test publishes it: the key record at fw2026._domainkey.notify.example.com, nothing else. */
const lookups: string[] = [];
async function resolver(name: string, type: string): Promise<string[][]> {
  lookups.push(`${type} ${name}`);
  if (type === 'TXT' && name === `${SELECTOR}._domainkey.${DOMAIN}`) return [[publicKeyTxt]];
  throw Object.assign(new Error(`no ${type} record for ${name}`), { code: 'ENOTFOUND' });
}

async function verify(raw: string) {
  const result = await dkimVerify(Buffer.from(raw), { resolver, strict: true });
  return result.results;
}

let counter = 0;
function message(overrides: Partial<EmailMessage> = {}): EmailMessage {
  counter += 1;
  return {
    to: `user${counter}@example.com`,
    subject: `付款延迟 — payment delayed (${counter})`,
    text: `您好，\n订单 ${counter} 的付款通道暂时不可用。`,
    html: `<p>您好，</p><p>订单 <b>${counter}</b> 的付款通道暂时不可用。</p>`,
    messageId: messageIdFor(`dkim-test:${counter}:${Date.now()}`, DOMAIN),
    headers: {
      'List-Unsubscribe': `<https://notify.example.com/unsubscribe?token=t${counter}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
    ...overrides,
  };
}

/** The tags of the message's DKIM-Signature header, unfolded. */
function signatureTags(raw: string): Map<string, string> {
  const header = /^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)/im.exec(raw);
  expect(header, 'a DKIM-Signature header').not.toBeNull();
  const value = header![1]!.replace(/\r?\n[ \t]+/g, ' ');
  return new Map(
    value
      .split(';')
      .map((tag) => tag.trim())
      .filter(Boolean)
      .map((tag) => {
        const eq = tag.indexOf('=');
        return [tag.slice(0, eq).trim(), tag.slice(eq + 1).replace(/\s+/g, '')] as const;
      }),
  );
}

describe('DKIM over SMTP', () => {
  let smtp: TestSmtpServer;
  let sender: EmailSender | undefined;

  let logs: ReturnType<typeof captureLogs>;
  const open = (signing: DkimSigning | undefined): EmailSender =>
    (sender = createEmailSender({
      smtpUrl: smtp.url,
      outboxDir: '/nonexistent/unused',
      from: FROM,
      logger: (logs = captureLogs()).logger,
      timeouts: { connectMs: 2_000, greetingMs: 2_000, socketMs: 5_000 },
      dkim: signing,
    }));

  beforeEach(async () => {
    smtp = await startSmtpServer();
    lookups.length = 0;
  });

  afterEach(async () => {
    await sender?.close();
    sender = undefined;
    await smtp.waitForNoConnections(2_000);
    await smtp.close();
  });

  it('signs From, To, Subject, Date, Message-ID and both List-Unsubscribe headers, and the signature verifies', async () => {
    await open(dkim).send(message());
    const [received] = await smtp.waitForMessages(1);

    const tags = signatureTags(received!.raw);
    expect(tags.get('d')).toBe(DOMAIN);
    expect(tags.get('s')).toBe(SELECTOR);
    expect(tags.get('a')).toBe('rsa-sha256');
    const signed = tags.get('h')!.toLowerCase().split(':');
    expect(signed).toEqual(
      expect.arrayContaining([
        'from',
        'to',
        'subject',
        'date',
        'message-id',
        'list-unsubscribe',
        'list-unsubscribe-post',
      ]),
    );

    const [result] = await verify(received!.raw);
    expect(result!.status).toMatchObject({ result: 'pass' });
    expect(result!.signingDomain).toBe(DOMAIN);
    expect(result!.selector).toBe(SELECTOR);
    expect(lookups).toEqual([`TXT ${SELECTOR}._domainkey.${DOMAIN}`]);

    // The log says where the key is published, never the key.
    expect(logs.lines().find((l) => l.msg === 'email sender ready')).toMatchObject({
      dkim: `${SELECTOR}._domainkey.${DOMAIN}`,
    });
    expect(JSON.stringify(logs.lines())).not.toContain(privateKeyPem.split('\n')[1]);
  });

  it('does not verify once the body is changed after signing', async () => {
    await open(dkim).send(message({ text: 'Pay here: https://pay.example.com/', html: '' }));
    const [received] = await smtp.waitForMessages(1);
    // Untouched, it passes: the failures below come from the changes alone.
    expect((await verify(received!.raw))[0]!.status.result).toBe('pass');

    const body = received!.raw.indexOf('\r\n\r\n') + 4;
    const tampered =
      received!.raw.slice(0, body) + received!.raw.slice(body).replace('pay.example.com', 'evil.example.net');
    expect(tampered).not.toBe(received!.raw);
    const [result] = await verify(tampered);
    expect(result!.status.result).toBe('fail');
    expect(result!.status.comment).toMatch(/body hash did not verify/);
  });

  it('does not verify once a signed List-Unsubscribe header is pointed elsewhere', async () => {
    await open(dkim).send(message());
    const [received] = await smtp.waitForMessages(1);
    const tampered = received!.raw.replace(
      /^List-Unsubscribe: <https:\/\/notify\.example\.com\//m,
      'List-Unsubscribe: <https://evil.example.net/',
    );
    expect(tampered).not.toBe(received!.raw);
    const [result] = await verify(tampered);
    expect(result!.status.result).toBe('fail');
  });

  it('sends no DKIM-Signature without a key', async () => {
    await open(undefined).send(message());
    const [received] = await smtp.waitForMessages(1);
    expect(received!.raw).not.toMatch(/^DKIM-Signature:/im);
    expect(received!.headers.has('dkim-signature')).toBe(false);
  });
});

describe('DKIM in the outbox', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forewarn-dkim-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the .eml signed as it would have been sent', async () => {
    const outbox = createEmailSender({ outboxDir: dir, from: FROM, logger: captureLogs().logger, dkim });
    try {
      await outbox.send(message());
    } finally {
      await outbox.close();
    }
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
    const raw = await readFile(path.join(dir, file!), 'utf8');
    expect((await verify(raw))[0]!.status.result).toBe('pass');
  });
});
