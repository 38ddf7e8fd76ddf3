// The email channel against a real SMTP server (test/support/smtp.ts) and a real outbox
// directory: what arrives, how connections are pooled and released, and how each kind of
// server trouble comes back as a retryable or permanent DeliveryError.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmailSender,
  DeliveryError,
  messageIdFor,
  type EmailMessage,
  type EmailSender,
  type EmailSenderOptions,
} from '../../lib/channels/email.ts';
import { captureLogs } from '../support/services.ts';
import { accept, drop, parseMessage, reject, startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const FROM = 'Forewarn <noreply@forewarn.example.com>';

let counter = 0;
function message(overrides: Partial<EmailMessage> = {}): EmailMessage {
  counter += 1;
  return {
    to: `user${counter}@example.com`,
    subject: `Your order is delayed (${counter})`,
    text: `Hello,\nyour order ${counter} is delayed. We are on it.`,
    html: `<p>Hello,</p><p>your order <b>${counter}</b> is delayed. We are on it.</p>`,
    messageId: messageIdFor(`incident:1:user:${counter}:${Date.now()}`, 'forewarn.example.com'),
    ...overrides,
  };
}

/** The DeliveryError a send rejects with; fails the test if it resolves or rejects otherwise. */
async function failure(attempt: Promise<unknown>): Promise<DeliveryError> {
  const error = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeliveryError);
  return error as DeliveryError;
}

describe('email over SMTP', () => {
  let smtp: TestSmtpServer;
  let sender: EmailSender | undefined;
  let logs: ReturnType<typeof captureLogs>;

  const open = (options: Partial<EmailSenderOptions> = {}): EmailSender => {
    sender = createEmailSender({
      smtpUrl: smtp.url,
      outboxDir: '/nonexistent/unused',
      from: FROM,
      logger: logs.logger,
      timeouts: { connectMs: 2_000, greetingMs: 2_000, socketMs: 5_000 },
      ...options,
    });
    return sender;
  };

  beforeEach(async () => {
    smtp = await startSmtpServer();
    logs = captureLogs();
  });

  afterEach(async () => {
    await sender?.close();
    sender = undefined;
    // A sender that leaks a connection fails the test that leaked it.
    await smtp.waitForNoConnections(2_000);
    await smtp.close();
  });

  it('delivers text and HTML as one multipart message with its Message-ID unchanged', async () => {
    const sent = message({
      subject: 'Zahlung verzögert — 付款延迟',
      text: 'Plain: ünïcödé and 中文',
      html: '<p>HTML: <b>ünïcödé</b> and 中文</p>',
      headers: {
        'List-Unsubscribe': '<https://forewarn.example.com/u/abc>, <mailto:unsubscribe@forewarn.example.com>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      },
    });
    const result = await open().send(sent);
    expect(result).toMatchObject({ kind: 'smtp', messageId: sent.messageId });
    expect(result.response).toMatch(/^250 /);

    const [received] = await smtp.waitForMessages(1);
    expect(received!.messageId).toBe(sent.messageId);
    expect(received!.envelope).toEqual({ from: 'noreply@forewarn.example.com', to: [sent.to] });
    expect(received!.to).toBe(sent.to);
    expect(received!.from).toBe(FROM);
    expect(received!.subject).toBe(sent.subject);
    expect(received!.headers.get('content-type')).toMatch(/^multipart\/alternative;/);
    expect(received!.parts.map((p) => p.contentType)).toEqual(['text/plain', 'text/html']);
    expect(received!.text).toBe(sent.text);
    expect(received!.html).toBe(sent.html);
    expect(received!.headers.get('list-unsubscribe')).toBe(sent.headers!['List-Unsubscribe']);
    expect(received!.headers.get('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
    expect(received!.headers.has('x-mailer')).toBe(false);
  });

  it('sends text alone when the HTML is empty, rather than a blank HTML part', async () => {
    const sent = message({ html: '' });
    await open().send(sent);
    const [received] = await smtp.waitForMessages(1);
    expect(received!.parts.map((p) => p.contentType)).toEqual(['text/plain']);
    expect(received!.text).toBe(sent.text);
  });

  it('reuses pooled connections for many messages, never opening more than maxConnections', async () => {
    const email = open({ pool: { maxConnections: 2 } });
    const batch = Array.from({ length: 40 }, () => message());
    await Promise.all(batch.map((m) => email.send(m)));
    const received = await smtp.waitForMessages(40);
    expect(new Set(received.map((m) => m.messageId))).toEqual(new Set(batch.map((m) => m.messageId)));
    expect(smtp.connectionsOpened).toBeLessThanOrEqual(2);
    expect(new Set(received.map((m) => m.sessionId)).size).toBeLessThanOrEqual(2);

    // One after the other, the same single connection carries them all.
    const before = smtp.connectionsOpened;
    for (let i = 0; i < 10; i++) await email.send(message());
    expect(smtp.connectionsOpened).toBe(before);
  });

  it('opens a new connection after maxMessages', async () => {
    const email = open({ pool: { maxConnections: 1, maxMessages: 3 } });
    for (let i = 0; i < 7; i++) await email.send(message());
    expect(smtp.connectionsOpened).toBe(3);
  });

  it.each([
    [421, 'rcpt'],
    [450, 'rcpt'],
    [451, 'data'],
    [452, 'rcpt'],
  ] as const)('turns a %i reply at %s into a retryable DeliveryError', async (code, at) => {
    const email = open();
    smtp.queue(reject(code, at));
    const sent = message();
    const error = await failure(email.send(sent));
    expect(error).toMatchObject({ retryable: true, code: 'FW_DELIVERY_RETRYABLE', responseCode: code });
    expect(error.message).toContain(sent.messageId);
    // The pool carries on with the next message.
    await email.send(message());
    expect(smtp.messages).toHaveLength(1);
  });

  it.each([
    [550, 'rcpt'],
    [553, 'rcpt'],
    [554, 'data'],
  ] as const)('turns a %i reply at %s into a permanent DeliveryError', async (code, at) => {
    const email = open();
    smtp.queue(reject(code, at, 'Requested action not taken: mailbox unavailable'));
    const error = await failure(email.send(message()));
    expect(error).toMatchObject({ retryable: false, code: 'FW_DELIVERY_PERMANENT', responseCode: code });
    expect(error.reason).toBe(`smtp ${code} at ${at === 'rcpt' ? 'RCPT TO' : 'DATA'}`);
    await email.send(message());
    expect(smtp.messages).toHaveLength(1);
  });

  it('decides per recipient with a standing rule', async () => {
    const email = open();
    smtp.behave(({ to }) => (to.startsWith('gone') ? reject(550) : accept()));
    const results = await Promise.allSettled([
      email.send(message({ to: 'gone@example.com' })),
      email.send(message({ to: 'here@example.com' })),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(smtp.messages.map((m) => m.to)).toEqual(['here@example.com']);
  });

  it.each(['rcpt', 'data'] as const)(
    'turns a connection dropped at %s into a retryable DeliveryError',
    async (at) => {
      const email = open();
      smtp.queue(drop(at));
      const error = await failure(email.send(message()));
      expect(error).toMatchObject({
        retryable: true,
        reason: 'connection dropped',
        transportCode: 'ECONNECTION',
      });
      // A dropped message is not half-delivered, and the pool carries on on a new connection.
      await email.send(message());
      expect(smtp.messages).toHaveLength(1);
    },
  );

  it('retries a connection dropped before the greeting on a new one', async () => {
    // nodemailer's pool puts the message back in its queue when a connection closes before
    // anything was sent on it, so one such drop goes unnoticed.
    smtp.queue(drop('connect'));
    await open().send(message());
    expect(smtp.connectionsOpened).toBe(2);
    expect(smtp.messages).toHaveLength(1);
  });

  it('gives up on a server that keeps dropping connections before the greeting, as retryable', async () => {
    smtp.behave(drop('connect'));
    const error = await failure(open().send(message()));
    expect(error).toMatchObject({
      retryable: true,
      reason: 'connection dropped repeatedly',
      transportCode: 'ECONNECTION',
    });
    expect(smtp.connectionsOpened).toBeGreaterThan(1); // about 3 s of quick retries by the pool
  });

  it('refuses a malformed recipient as permanent without connecting', async () => {
    const email = open();
    for (const to of ['not-an-address', 'a@example.com, b@example.com', 'Name <a@example.com>']) {
      const error = await failure(email.send(message({ to })));
      expect(error).toMatchObject({ retryable: false, reason: 'invalid recipient address' });
    }
    const error = await failure(email.send(message({ headers: { Bcc: 'spy@example.com' } })));
    expect(error).toMatchObject({ retryable: false, reason: 'invalid header' });
    await failure(email.send(message({ headers: { 'X-Note': 'a\r\nBcc: spy@example.com' } })));
    expect(smtp.connectionsOpened).toBe(0);
  });

  it('logs a failure with the reason and the recipient masked', async () => {
    const email = open();
    smtp.queue(reject(550));
    await failure(email.send(message({ to: 'zhang.san@example.com' })));
    const line = logs.lines().find((l) => l.msg === 'email not delivered');
    expect(line).toMatchObject({
      level: 'warn',
      component: 'email',
      to: 'z***@example.com',
      retryable: false,
      reason: 'smtp 550 at RCPT TO',
      responseCode: 550,
    });
    expect(JSON.stringify(logs.lines())).not.toContain('zhang.san');
  });

  it('verifies the server, and reports refused credentials as permanent', async () => {
    await open().verify();
    await sender!.close();

    const guarded = await startSmtpServer({ credentials: { user: 'mailer', pass: 'right' } });
    try {
      const wrong = createEmailSender({
        smtpUrl: guarded.url.replace(':right@', ':wrong@'),
        outboxDir: '/nonexistent/unused',
        from: FROM,
        logger: logs.logger,
      });
      try {
        const error = await failure(wrong.verify());
        expect(error).toMatchObject({ retryable: false, responseCode: 535 });
        expect(error.reason).toMatch(/^auth failed/);
        expect((await failure(wrong.send(message()))).retryable).toBe(false);
      } finally {
        await wrong.close();
      }
      const right = createEmailSender({
        smtpUrl: guarded.url,
        outboxDir: '/x',
        from: FROM,
        logger: logs.logger,
      });
      try {
        await right.send(message());
        expect(guarded.messages).toHaveLength(1);
      } finally {
        await right.close();
      }
      await guarded.waitForNoConnections();
    } finally {
      await guarded.close();
    }
  });

  it('turns a server that never reaches the greeting into a retryable timeout', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const email = createEmailSender({
      smtpUrl: `smtp://127.0.0.1:${port}`,
      outboxDir: '/x',
      from: FROM,
      logger: logs.logger,
      timeouts: { greetingMs: 200 },
    });
    try {
      const error = await failure(email.send(message()));
      expect(error).toMatchObject({ retryable: true, transportCode: 'ETIMEDOUT' });
      expect(error.reason).toMatch(/^timeout/);
    } finally {
      await email.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('gives up on a send that takes longer than sendMs, also one still waiting for its turn, as retryable', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.resume(); // read (and ignore) what comes, so that the client's FIN is seen
      socket.write('220 slow.example.com ESMTP\r\n'); // then never answers EHLO
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const slow = createEmailSender({
      smtpUrl: `smtp://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      outboxDir: '/x',
      from: FROM,
      logger: logs.logger,
      pool: { maxConnections: 1, maxInFlight: 1 },
      timeouts: { sendMs: 300, socketMs: 10_000 },
    });
    try {
      const started = Date.now();
      // The second never reaches nodemailer: it waits behind the first until its own time is up.
      const [first, waiting] = await Promise.all([
        failure(slow.send(message())),
        failure(slow.send(message())),
      ]);
      expect(first).toMatchObject({ retryable: true, reason: 'send timed out after 300 ms' });
      expect(waiting).toMatchObject({ retryable: true, reason: 'send timed out after 300 ms' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await slow.close();
      await waitUntil(() => sockets.size === 0);
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('hands at most maxInFlight messages to nodemailer at once; the others wait and all arrive', async () => {
    // nodemailer opens a new pooled connection whenever a message waits in its own queue, up to
    // maxConnections: with one message handed over at a time, it never needs a second connection.
    const limited = open({ pool: { maxConnections: 5, maxInFlight: 1 } });
    await expect(
      Promise.all(Array.from({ length: 30 }, () => limited.send(message()))),
    ).resolves.toHaveLength(30);
    expect(smtp.messages).toHaveLength(30);
    expect(smtp.connectionsOpened).toBe(1);
    await limited.close();
    // The same burst with room for ten in flight uses every connection it may.
    const opened = smtp.connectionsOpened;
    const wide = open({ pool: { maxConnections: 5, maxInFlight: 10 } });
    await Promise.all(Array.from({ length: 30 }, () => wide.send(message())));
    expect(smtp.connectionsOpened - opened).toBe(5);
  });

  it('refuses a maxInFlight that is not a positive integer', () => {
    expect(() => open({ pool: { maxInFlight: 0 } })).toThrow(
      /pool\.maxInFlight: expected a positive integer, got 0/,
    );
  });

  it('close() lets in-flight sends finish, refuses new ones and releases every connection', async () => {
    const email = open({ pool: { maxConnections: 3 } });
    const inFlight = Array.from({ length: 12 }, () => email.send(message()));
    await smtp.waitForMessages(1);
    const closed = email.close();
    const error = await failure(email.send(message()));
    expect(error).toMatchObject({ retryable: true, reason: 'sender closed' });
    await closed;
    await expect(Promise.all(inFlight)).resolves.toHaveLength(12);
    expect(smtp.messages).toHaveLength(12);
    await smtp.waitForNoConnections(2_000);
    expect(smtp.openConnections).toBe(0);
    await email.close(); // twice is harmless
  });
});

describe('email to the outbox', () => {
  let dir: string;
  let sender: EmailSender;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forewarn-outbox-'));
    sender = createEmailSender({
      outboxDir: path.join(dir, 'outbox'),
      from: FROM,
      logger: captureLogs().logger,
    });
  });

  afterEach(async () => {
    await sender.close();
    await rm(dir, { recursive: true, force: true });
  });

  const files = () => readdir(path.join(dir, 'outbox'));

  it('writes one parseable .eml per message, with both parts and the Message-ID', async () => {
    expect(sender.kind).toBe('outbox');
    const sent = [message(), message({ subject: 'Überweisung — 转账' })];
    const results = await Promise.all(sent.map((m) => sender.send(m)));
    expect(await files()).toHaveLength(2);
    for (const [i, m] of sent.entries()) {
      const result = results[i]!;
      expect(result).toMatchObject({ kind: 'outbox', messageId: m.messageId, duplicate: false });
      expect(path.basename(result.file!)).toBe(`${m.messageId.slice(1, -1)}.eml`);
      const parsed = parseMessage(await readFile(result.file!, 'utf8'));
      expect(parsed.messageId).toBe(m.messageId);
      expect(parsed.to).toBe(m.to);
      expect(parsed.subject).toBe(m.subject);
      expect(parsed.parts.map((p) => p.contentType)).toEqual(['text/plain', 'text/html']);
      expect(parsed.text).toBe(m.text);
      expect(parsed.html).toBe(m.html);
    }
  });

  it('writes the same Message-ID once, also when sent concurrently', async () => {
    const first = message();
    const again = { ...first, subject: 'a retry, rendered again' };
    const results = await Promise.all([sender.send(first), sender.send(again), sender.send(again)]);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await sender.send(again)).toMatchObject({ duplicate: true, file: results[0]!.file });
    // Only the final file: no temporary file left behind.
    expect(await files()).toEqual([path.basename(results[0]!.file!)]);
  });

  it('refuses a malformed recipient as permanent and writes nothing', async () => {
    await sender.verify();
    const error = await failure(sender.send(message({ to: 'nobody' })));
    expect(error).toMatchObject({ retryable: false, reason: 'invalid recipient address' });
    expect(await files()).toEqual([]);
  });

  it('refuses sends after close()', async () => {
    await sender.close();
    expect((await failure(sender.send(message()))).reason).toBe('sender closed');
  });
});

async function waitUntil(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
