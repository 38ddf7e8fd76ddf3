// The email channel. With an SMTP URL, messages go out through a pooled nodemailer transport;
// without one, each is written as an .eml file to an outbox directory (demos, development).
// Either way send() either resolves or rejects with a DeliveryError already sorted into
// retryable and permanent, and the caller's stable Message-ID makes a retried send recognisable.
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import type { DKIMOptions } from 'nodemailer/lib/dkim';
import addressparser from 'nodemailer/lib/addressparser';
import { connectionErrorLog, connectionTo, type ConnectionErrorLog } from '../connection-errors.ts';
import { redactUrl } from '../env.ts';
import { ForewarnError } from '../errors.ts';
import { maskEmail, type Logger } from '../logger.ts';
import { semaphore } from '../semaphore.ts';
import { DeliveryError } from './delivery-error.ts';

export { DeliveryError } from './delivery-error.ts';

export interface EmailMessage {
  /** One bare address, e.g. "zhang.san@example.com"; no display name, no list. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Stable per logical message, e.g. from `messageIdFor(dedupeKey, domain)`: "<hex@domain>". */
  messageId: string;
  /** Extra headers such as List-Unsubscribe; standard fields (From, To, Subject...) are refused. */
  headers?: Record<string, string>;
}

export interface SendResult {
  kind: 'smtp' | 'outbox';
  /** The Message-ID the message carries, as given. */
  messageId: string;
  /** smtp: the server's final reply, e.g. "250 OK: queued as 1A2B". */
  response?: string;
  /** outbox: the .eml file that holds the message. */
  file?: string;
  /** outbox: a file for this Message-ID already existed, so nothing was written. */
  duplicate?: boolean;
}

export interface EmailSender {
  readonly kind: 'smtp' | 'outbox';
  /** Resolves once the message is handed over; rejects with a DeliveryError. */
  send(message: EmailMessage): Promise<SendResult>;
  /** smtp: connects, greets and logs in once (rejects with a DeliveryError); outbox: checks the directory is writable. */
  verify(): Promise<void>;
  /** Lets in-flight sends finish (up to `timeouts.closeMs`), then releases every connection. */
  close(): Promise<void>;
}

export interface EmailTimeouts {
  /** TCP and TLS connect. Default 10 s. */
  connectMs?: number;
  /** From connected to the server's 220 greeting. Default 10 s. */
  greetingMs?: number;
  /** Silence from the server in the middle of a session. Default 60 s. */
  socketMs?: number;
  /** A whole send, including the wait for a free pooled connection. Default 120 s. */
  sendMs?: number;
  /** How long close() lets in-flight sends finish before aborting them. Default 10 s. */
  closeMs?: number;
}

export interface EmailSenderOptions {
  /** smtp://user:pass@host:587 (STARTTLS when offered) or smtps://user:pass@host:465; absent: outbox. */
  smtpUrl?: string | undefined;
  outboxDir: string;
  /** "Forewarn <noreply@example.com>" or a bare address. */
  from: string;
  logger: Logger;
  /** Where the SMTP pool's own errors go (one rate-limited line each); by default a log of its own. */
  connectionErrors?: ConnectionErrorLog;
  /**
   * maxInFlight: messages handed to nodemailer at once (default 2 per connection); further sends
   * wait here. nodemailer composes a message when it is handed over and holds it until a
   * connection is free, so a long queue there costs memory and garbage collection, not speed.
   */
  pool?: { maxConnections?: number; maxMessages?: number; maxInFlight?: number };
  timeouts?: EmailTimeouts;
  /** Signs every message (SMTP and outbox alike); from `dkimSigning`. Absent: unsigned. */
  dkim?: DkimSigning | undefined;
}

/** A DKIM key and where its public half is published: `<keySelector>._domainkey.<domainName>`. */
export interface DkimSigning {
  domainName: string;
  keySelector: string;
  /** PEM, an RSA private key (lib/env.ts checks it). */
  privateKey: string;
}

/**
 * The header fields a DKIM signature covers, each only when the message has it (nodemailer leaves
 * absent ones out of h=). RFC 8058 asks for List-Unsubscribe and List-Unsubscribe-Post to be
 * signed, so that nobody on the way can point the one-click unsubscribe elsewhere.
 */
export const DKIM_SIGNED_HEADERS = [
  'From',
  'Sender',
  'Reply-To',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'In-Reply-To',
  'References',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'List-Id',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
] as const;

/**
 * The DKIM signing of a deployment: the key from the environment and the domain and selector from
 * the config, both or neither. One without the other is a mistake (mail would go out unsigned
 * although a key was meant to sign it), so it stops the start, naming what is missing.
 */
export function dkimSigning(
  privateKey: string | undefined,
  settings: { domainName: string; keySelector: string } | undefined,
): DkimSigning | undefined {
  if (privateKey === undefined && settings === undefined) return undefined;
  if (privateKey === undefined) {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      `notifications.email.dkim is set (domainName ${JSON.stringify(settings!.domainName)}, keySelector ${JSON.stringify(settings!.keySelector)}) but there is no key to sign with: ` +
        'expected the environment variable FOREWARN_DKIM_PRIVATE_KEY (the PEM) or FOREWARN_DKIM_PRIVATE_KEY_FILE (its path), or remove notifications.email.dkim to send unsigned',
    );
  }
  if (settings === undefined) {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      'a DKIM key is set (FOREWARN_DKIM_PRIVATE_KEY or FOREWARN_DKIM_PRIVATE_KEY_FILE) but the config has no notifications.email.dkim: ' +
        'expected notifications.email.dkim: { domainName: "example.com", keySelector: "forewarn" } naming where its public key is published, or unset the variable to send unsigned',
    );
  }
  return { domainName: settings.domainName, keySelector: settings.keySelector, privateKey };
}

/** nodemailer's `dkim` transport option for the signing, or nothing. */
function dkimOption(dkim: DkimSigning | undefined): { dkim?: DKIMOptions } {
  return dkim === undefined ? {} : { dkim: { ...dkim, headerFieldNames: DKIM_SIGNED_HEADERS.join(':') } };
}

const DEFAULT_TIMEOUTS: Required<EmailTimeouts> = {
  connectMs: 10_000,
  greetingMs: 10_000,
  socketMs: 60_000,
  sendMs: 120_000,
  closeMs: 10_000,
};

/** Headers the sender sets itself; a caller's value would silently replace or duplicate them. */
const RESERVED_HEADERS = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'message-id',
  'date',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
]);

export function createEmailSender(options: EmailSenderOptions): EmailSender {
  const from = checkFrom(options.from);
  const smtpUrl = options.smtpUrl === '' ? undefined : options.smtpUrl;
  if (smtpUrl === undefined && options.outboxDir.trim() === '') {
    throw new ForewarnError('FW_EMAIL_CONFIG_INVALID', 'email outboxDir: expected a directory path, got ""');
  }
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const [key, value] of Object.entries(options.timeouts ?? {})) {
    if (value !== undefined) timeouts[key as keyof EmailTimeouts] = positiveInteger(`timeouts.${key}`, value);
  }
  const log = options.logger.child({ component: 'email' });
  return smtpUrl === undefined
    ? createOutboxSender(path.resolve(options.outboxDir), from, timeouts, log, options.dkim)
    : createSmtpSender(
        smtpUrl,
        from,
        options.pool ?? {},
        timeouts,
        log,
        options.connectionErrors ?? connectionErrorLog(options.logger),
        options.dkim,
      );
}

/** "<sha256(dedupeKey)@domain>": the same key always gives the same id, and it never shows the key. */
export function messageIdFor(dedupeKey: string, domain: string): string {
  if (domain !== lastCheckedDomain && !isHostName(domain)) {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      `messageIdFor: domain: expected a host name such as "forewarn.example.com", got ${JSON.stringify(domain)}`,
    );
  }
  lastCheckedDomain = domain;
  return `<${createHash('sha256').update(dedupeKey).digest('hex')}@${domain.toLowerCase()}>`;
}

/** The domain of the previous call: one per deployment, so it is checked once, not per email. */
let lastCheckedDomain: string | undefined;

function isHostName(domain: string): boolean {
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(
    domain,
  );
}

/**
 * A cheap check that catches what is obviously not one mailbox: empty, a display name, a list,
 * spaces or control characters, no domain with a dot. It is no proof that the mailbox exists.
 */
export function isPlausibleEmailAddress(address: string): boolean {
  if (typeof address !== 'string' || address.length > 254) return false; // also a stray null from the caller
  const match = /^([^\s\x00-\x1f\x7f@<>()[\]\\,;:"]+)@([^\s\x00-\x1f\x7f@<>()[\]\\,;:"]+)$/u.exec(address);
  if (!match) return false;
  const [, local = '', domain = ''] = match;
  if (local.length > 64 || local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
  const labels = domain.split('.');
  return labels.length >= 2 && labels.every((label) => label.length > 0 && label.length <= 63);
}

// ---------------------------------------------------------------------------------------------
// SMTP

function createSmtpSender(
  smtpUrl: string,
  from: string,
  pool: { maxConnections?: number; maxMessages?: number; maxInFlight?: number },
  timeouts: Required<EmailTimeouts>,
  log: Logger,
  connectionErrors: ConnectionErrorLog,
  dkim: DkimSigning | undefined,
): EmailSender {
  const server = checkSmtpUrl(smtpUrl);
  const maxConnections = positiveInteger('pool.maxConnections', pool.maxConnections ?? 5);
  const maxMessages = positiveInteger('pool.maxMessages', pool.maxMessages ?? 100);
  const handOver = semaphore(positiveInteger('pool.maxInFlight', pool.maxInFlight ?? maxConnections * 2));
  const transporter = nodemailer.createTransport({
    pool: true,
    url: smtpUrl,
    maxConnections,
    maxMessages,
    connectionTimeout: timeouts.connectMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    dnsTimeout: timeouts.connectMs,
    // nodemailer's own log lines name recipients in free text, which the logger cannot mask;
    // ours carry the message id, the masked recipient and the sorted reason instead.
    logger: false,
    ...dkimOption(dkim),
  });
  // A failed send rejects its own promise; what the transport emits besides (nodemailer forwards
  // its pool's errors) would crash the process without a listener, and flood the log with one.
  connectionErrors.watch(transporter, connectionTo('smtp', 'smtp', smtpUrl));
  log.info(
    { transport: 'smtp', server, maxConnections, maxMessages, dkim: dkimSummary(dkim) },
    'email sender ready',
  );

  const inFlight = new Set<InFlight>();
  let closing: Promise<void> | undefined;

  async function deliver(message: EmailMessage, mail: SendMailOptions): Promise<SendResult> {
    const controller = new AbortController();
    const turn = handOver.turn();
    let abortedBecause: string | undefined;
    const abort = (reason: string) => {
      abortedBecause ??= reason;
      turn.cancel(new Error('aborted while waiting for a connection'));
      controller.abort();
    };
    const timer = setTimeout(() => abort(`send timed out after ${timeouts.sendMs} ms`), timeouts.sendMs);
    // The send's time limit and close() cover the wait for a turn as well as nodemailer's part.
    const attempt = turn.run(() => transporter.sendMail({ ...mail, signal: controller.signal }));
    const entry: InFlight = { done: attempt.catch(() => undefined), abort };
    inFlight.add(entry);
    try {
      const info = await attempt;
      log.debug({ messageId: message.messageId, to: message.to, response: info.response }, 'email sent');
      return { kind: 'smtp', messageId: message.messageId, response: info.response };
    } catch (error) {
      throw logFailure(
        log,
        message,
        abortedBecause === undefined
          ? classifySendError(error, { messageId: message.messageId })
          : new DeliveryError(`email ${message.messageId}: ${abortedBecause} (retryable)`, {
              retryable: true,
              reason: abortedBecause,
              transportCode: 'EABORT',
              cause: error,
            }),
      );
    } finally {
      clearTimeout(timer);
      inFlight.delete(entry);
    }
  }

  return {
    kind: 'smtp',
    async send(message) {
      if (closing) throw senderClosed(message.messageId);
      return deliver(message, checkedMail(log, from, message));
    },
    async verify() {
      try {
        await transporter.verify();
      } catch (error) {
        throw classifySendError(error, { messageId: '(verify)' });
      }
    },
    close() {
      closing ??= (async () => {
        await settle(inFlight, timeouts.closeMs);
        transporter.close();
        log.info({ transport: 'smtp', server }, 'email sender closed');
      })();
      return closing;
    },
  };
}

interface InFlight {
  /** Settles (never rejects) when the send does. */
  done: Promise<unknown>;
  abort(reason: string): void;
}

/** Waits for in-flight sends up to `graceMs`, then aborts what is left and waits for that. */
async function settle(inFlight: Set<InFlight>, graceMs: number): Promise<void> {
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([Promise.all([...inFlight].map((entry) => entry.done)), grace]);
  clearTimeout(timer);
  for (const entry of inFlight) entry.abort(`sender closed before the send finished (waited ${graceMs} ms)`);
  await Promise.all([...inFlight].map((entry) => entry.done));
}

// ---------------------------------------------------------------------------------------------
// Outbox

function createOutboxSender(
  outboxDir: string,
  from: string,
  timeouts: Required<EmailTimeouts>,
  log: Logger,
  dkim: DkimSigning | undefined,
): EmailSender {
  // Builds the MIME message without sending it anywhere: the same composer (and signature) as SMTP.
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, ...dkimOption(dkim) });
  const inFlight = new Set<InFlight>();
  let closing: Promise<void> | undefined;
  let dirReady: Promise<unknown> | undefined;
  log.info(
    { transport: 'outbox', outboxDir, dkim: dkimSummary(dkim) },
    'email sender ready: no SMTP URL, writing .eml files',
  );

  async function write(message: EmailMessage, mail: SendMailOptions): Promise<SendResult> {
    const file = path.join(outboxDir, outboxFileName(message.messageId));
    try {
      dirReady ??= mkdir(outboxDir, { recursive: true });
      await dirReady;
      // A message written before is not composed again: the first file stays as it was.
      if (await exists(file)) return { kind: 'outbox', messageId: message.messageId, file, duplicate: true };
      const info = await composer.sendMail(mail);
      if (!Buffer.isBuffer(info.message)) throw new Error('nodemailer returned a stream, expected a buffer');
      const written = await writeOnce(file, info.message);
      log.debug({ messageId: message.messageId, to: message.to, file, duplicate: !written }, 'email written');
      return { kind: 'outbox', messageId: message.messageId, file, duplicate: !written };
    } catch (error) {
      dirReady = undefined; // the directory may have been removed: create it again next time
      const code = errorCode(error);
      throw logFailure(
        log,
        message,
        new DeliveryError(
          `email ${message.messageId}: writing ${file} failed (retryable): ${error instanceof Error ? error.message : String(error)}`,
          {
            retryable: true,
            reason: `outbox write failed${code ? ` (${code})` : ''}`,
            transportCode: code,
            cause: error,
          },
        ),
      );
    }
  }

  return {
    kind: 'outbox',
    async send(message) {
      if (closing) throw senderClosed(message.messageId);
      const attempt = write(message, checkedMail(log, from, message));
      // A file write cannot be aborted; close() just waits for it.
      const entry: InFlight = { done: attempt.catch(() => undefined), abort: () => undefined };
      inFlight.add(entry);
      try {
        return await attempt;
      } finally {
        inFlight.delete(entry);
      }
    },
    async verify() {
      try {
        await mkdir(outboxDir, { recursive: true });
        await access(outboxDir, constants.W_OK);
      } catch (error) {
        throw new ForewarnError(
          'FW_EMAIL_CONFIG_INVALID',
          `email outboxDir ${outboxDir}: expected a writable directory, got ${errorCode(error) ?? String(error)}`,
          { cause: error },
        );
      }
    },
    close() {
      closing ??= (async () => {
        await settle(inFlight, timeouts.closeMs);
        composer.close();
      })();
      return closing;
    },
  };
}

/** "<a1b2@forewarn>" → "a1b2@forewarn.eml"; an id with other characters → "<sha256 of it>.eml". */
export function outboxFileName(messageId: string): string {
  const inner = messageId.replace(/^<|>$/g, '');
  if (/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,200}$/.test(inner) && !inner.includes('..')) return `${inner}.eml`;
  return `${createHash('sha256').update(messageId).digest('hex')}.eml`;
}

/**
 * Writes `data` to `file` unless it exists, so that a crash never leaves half a file under the
 * final name: a temporary file is written and flushed, then hard-linked into place, which fails
 * if another write of the same message got there first. Returns false when it did.
 */
async function writeOnce(file: string, data: Buffer): Promise<boolean> {
  const dir = path.dirname(file);
  // Dot-prefixed and not ending in .eml: nothing that reads the outbox picks up a leftover.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    try {
      await link(temp, file);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST') return false;
      // Some filesystems (SMB, some FUSE mounts) have no hard links; rename is atomic too but
      // replaces, so a concurrent duplicate may win: still exactly one complete file.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
      if (await exists(file)) return false;
      await rename(temp, file);
    }
    await syncDir(dir);
    return true;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes the new directory entry durable; not every platform can open a directory.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

/** composeMail, logging a refusal the way a failed send is logged. */
function checkedMail(log: Logger, from: string, message: EmailMessage): SendMailOptions {
  try {
    return composeMail(from, message);
  } catch (error) {
    throw error instanceof DeliveryError ? logFailure(log, message, error) : error;
  }
}

/** Checks a message and turns it into nodemailer's form; a malformed one is a permanent failure. */
export function composeMail(from: string, message: EmailMessage): SendMailOptions {
  const refuse = (reason: string, detail: string, addressRejected = false) =>
    new DeliveryError(`email ${message.messageId}: ${reason} (permanent): ${detail}`, {
      retryable: false,
      reason,
      addressRejected,
    });
  if (!isPlausibleEmailAddress(message.to)) {
    throw refuse(
      'invalid recipient address',
      `to: expected one address such as "name@example.com", got ${JSON.stringify(maskEmail(message.to))}`,
      true,
    );
  }
  if (!/^<?[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>?$/.test(message.messageId)) {
    throw refuse(
      'invalid message id',
      `messageId: expected "<id@domain>" in printable ASCII, got ${JSON.stringify(message.messageId)}`,
    );
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) {
      throw refuse(
        'invalid header',
        `headers: expected extra header names such as "List-Unsubscribe", got ${JSON.stringify(name)}`,
      );
    }
    if (/[\r\n\0]/.test(value)) {
      throw refuse('invalid header', `headers.${name}: expected a value on one line, got a line break`);
    }
    headers[name] = value;
  }
  return {
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    // An empty alternative would show as a blank message in every HTML mail client.
    ...(message.html === '' ? {} : { html: message.html }),
    messageId: message.messageId,
    headers,
    xMailer: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

const RETRYABLE_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'EPROTOCOL',
  'EPROXY',
  'EMAXLIMIT',
  'EABORT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const PERMANENT_CODES = new Set([
  'EENVELOPE',
  'EMESSAGE',
  'EAUTH',
  'ENOAUTH',
  'EMAXRECIPIENTS',
  'EREQUIRETLS',
  'ECONFIG',
  'EFILEACCESS',
  'EURLACCESS',
  'ESTREAM',
  'EOTP',
]);

interface NodemailerShapedError {
  message?: unknown;
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
  command?: unknown;
  originalCode?: unknown;
  timeoutType?: unknown;
}

/**
 * Sorts a send failure: 4xx replies (and 503), connection trouble, timeouts and a closed pool are
 * worth retrying; 5xx replies, a bad envelope or message and refused credentials are not.
 * An error of unknown shape counts as retryable: the job's attempt limit bounds it.
 */
export function classifySendError(error: unknown, context: { messageId?: string } = {}): DeliveryError {
  if (error instanceof DeliveryError) return error;
  const e: NodemailerShapedError =
    typeof error === 'object' && error !== null ? error : { message: String(error) };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const responseCode =
    typeof e.responseCode === 'number' && e.responseCode >= 200 && e.responseCode < 600
      ? e.responseCode
      : undefined;
  const command = typeof e.command === 'string' ? e.command : undefined;
  const response = typeof e.response === 'string' ? e.response : undefined;
  const message = typeof e.message === 'string' ? e.message : '';

  let retryable: boolean;
  let reason: string;
  let addressRejected = false;
  if (responseCode !== undefined) {
    // RFC 5321: 4yz is transient, 5yz permanent, except 503 (bad sequence), which a new session fixes.
    retryable = responseCode < 500 || responseCode === 503;
    reason = `smtp ${responseCode}${command && command !== 'CONN' ? ` at ${command}` : ''}`;
    if (code === 'EAUTH') reason = `auth failed: ${reason}${retryable ? '' : ', check the SMTP credentials'}`;
    else if (command === 'CONN') reason = `${reason}, connection closed`;
    else if (!retryable) addressRejected = isAddressRejection(responseCode, response, command);
  } else if (code !== undefined && PERMANENT_CODES.has(code)) {
    retryable = false;
    reason =
      code === 'EAUTH' || code === 'ENOAUTH'
        ? 'auth failed, check the SMTP credentials'
        : code === 'EENVELOPE'
          ? 'invalid envelope address'
          : code === 'EMESSAGE'
            ? 'message refused'
            : `permanent transport error ${code}`;
  } else if (code !== undefined && RETRYABLE_CODES.has(code)) {
    retryable = true;
    reason = connectionReason(code, message, e);
  } else if (/pool was closed/i.test(message)) {
    retryable = true;
    reason = 'pool closed';
  } else {
    retryable = true;
    reason = `unclassified error${code ? ` ${code}` : ''}`;
  }
  const said = response
    ? `server replied ${JSON.stringify(maskEmailsIn(response).slice(0, 200))}`
    : maskEmailsIn(message).slice(0, 200);
  return new DeliveryError(
    `email ${context.messageId ?? '(unknown message)'}: ${reason} (${retryable ? 'retryable' : 'permanent'})${said ? `: ${said}` : ''}`,
    { retryable, reason, responseCode, transportCode: code, addressRejected, cause: error },
  );
}

/**
 * Whether a permanent SMTP reply says that the address itself is bad, so that it is never tried
 * again (suppressed), rather than this one message. With an RFC 3463 enhanced code, it decides:
 * 5.1.x (bad mailbox, bad domain, bad syntax, moved) is the address; 5.2.x (mailbox full or
 * disabled), 5.6.x (content), 5.7.x (policy, spam, authentication) and the rest are not. Without
 * one, RFC 5321's 550 (mailbox unavailable), 551 (not local) and 553 (name not allowed) are the
 * address when they answer RCPT TO; the same codes after DATA are as often about the content.
 */
export function isAddressRejection(
  responseCode: number,
  response: string | undefined,
  command: string | undefined,
): boolean {
  const enhanced = /^\d{3}[ -]([245])\.(\d{1,3})\.\d{1,3}\b/.exec(response ?? '');
  if (enhanced) return enhanced[1] === '5' && enhanced[2] === '1';
  return command === 'RCPT TO' && [550, 551, 553].includes(responseCode);
}

function connectionReason(code: string, message: string, e: NodemailerShapedError): string {
  switch (code) {
    case 'ETIMEDOUT':
      return typeof e.timeoutType === 'string'
        ? `timeout (${e.timeoutType.toLowerCase().replace(/_/g, ' ')})`
        : 'timeout';
    case 'ECONNECTION':
      if (/pool was closed/i.test(message)) return 'pool closed';
      if (/retries/i.test(message)) return 'connection dropped repeatedly';
      return 'connection dropped';
    case 'ESOCKET':
      return typeof e.originalCode === 'string' ? `socket error (${e.originalCode})` : 'socket error';
    case 'EDNS':
      return 'dns lookup failed';
    case 'ETLS':
      return 'tls failed';
    case 'EABORT':
      return 'aborted';
    case 'EMAXLIMIT':
      return 'connection reached its message limit';
    default:
      return `connection error ${code}`;
  }
}

function logFailure(log: Logger, message: EmailMessage, failure: DeliveryError): DeliveryError {
  log.warn(
    {
      messageId: message.messageId,
      to: message.to,
      code: failure.code,
      reason: failure.reason,
      retryable: failure.retryable,
      responseCode: failure.responseCode,
      transportCode: failure.transportCode,
    },
    'email not delivered',
  );
  return failure;
}

function senderClosed(messageId: string): DeliveryError {
  return new DeliveryError(`email ${messageId}: the sender is closed (retryable)`, {
    retryable: true,
    reason: 'sender closed',
  });
}

// ---------------------------------------------------------------------------------------------
// Options

/** What a log line may say about the signing: where, never the key. */
function dkimSummary(dkim: DkimSigning | undefined): string {
  return dkim === undefined ? 'off' : `${dkim.keySelector}._domainkey.${dkim.domainName}`;
}

function checkFrom(from: string): string {
  const parsed = addressparser(from, { flatten: true });
  const address = parsed.length === 1 ? parsed[0]?.address : undefined;
  if (address === undefined || !isPlausibleEmailAddress(address)) {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      `email from: expected one address such as "Forewarn <noreply@example.com>", got ${JSON.stringify(from)}`,
    );
  }
  return from;
}

/** Validates the URL and returns it with the password masked, for logs and messages. */
function checkSmtpUrl(smtpUrl: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(smtpUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') || parsed.hostname === '') {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      `email smtpUrl: expected a URL such as smtp://user:pass@host:587 or smtps://user:pass@host:465, got ${redactUrl(smtpUrl)}`,
    );
  }
  return redactUrl(smtpUrl);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new ForewarnError(
      'FW_EMAIL_CONFIG_INVALID',
      `email ${name}: expected a positive integer, got ${value}`,
    );
  }
  return value;
}

function maskEmailsIn(text: string): string {
  return text.replace(/[^\s<>"'(),;:[\]]+@[^\s<>"'(),;:[\]]+/g, (address) => maskEmail(address));
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
