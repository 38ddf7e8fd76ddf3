// A real SMTP server for tests: smtp-server on 127.0.0.1 at a random port, plain text (no
// STARTTLS), any or no login accepted. It records every message it accepts, parsed just enough
// to assert on (Message-ID, To, Subject, the text and HTML parts), and can be told to misbehave
// per message: reply 4xx/5xx at RCPT TO or DATA, drop the connection, answer slowly or only
// when told to, or never answer at all (a relay that hangs).
//
//   const smtp = await startSmtpServer();
//   const sender = createEmailSender({ smtpUrl: smtp.url, ... });
//   smtp.queue(reject(451), drop('data'));   // the next two messages fail, the rest are accepted
//   smtp.behave(({ to }) => (to.startsWith('bad') ? reject(550) : accept())); // standing rule
//   smtp.behave(accept({ delayMs: 1_000 }));    // a slow relay: every 250 comes a second late
//   await smtp.waitForMessages(3);
//   await smtp.close();
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/** What the server does with one message (one MAIL FROM ... DATA transaction). */
export type SmtpBehaviour =
  /**
   * Accept; the 250 after DATA comes `delayMs` later and not before `until` settles, if given.
   * A message whose client hangs up while it waits is not accepted.
   */
  | { kind: 'accept'; delayMs?: number; until?: Promise<unknown> }
  /** Reply `code` (e.g. 421, 450, 451, 452, 550, 553, 554) to RCPT TO or to the end of DATA. */
  | { kind: 'reject'; code: number; at: 'rcpt' | 'data'; message?: string }
  /**
   * Destroy the socket: at 'connect' before the greeting, at 'rcpt' instead of replying to
   * RCPT TO, at 'data' once the message has arrived but before the 250.
   */
  | { kind: 'drop'; at: 'connect' | 'rcpt' | 'data' }
  /** Never reply to RCPT TO: the session hangs until the client gives up or dies. */
  | { kind: 'hang'; at: 'rcpt' };

export const accept = (wait: { delayMs?: number; until?: Promise<unknown> } = {}): SmtpBehaviour => ({
  kind: 'accept',
  ...wait,
});
export const reject = (code: number, at: 'rcpt' | 'data' = 'rcpt', message?: string): SmtpBehaviour =>
  message === undefined ? { kind: 'reject', code, at } : { kind: 'reject', code, at, message };
export const drop = (at: 'connect' | 'rcpt' | 'data'): SmtpBehaviour => ({ kind: 'drop', at });
export const hang = (): SmtpBehaviour => ({ kind: 'hang', at: 'rcpt' });

/** What a behaviour rule sees about the message it decides on. */
export interface SmtpTransaction {
  /** The envelope sender (MAIL FROM). */
  from: string;
  /** The recipient being decided on (RCPT TO). */
  to: string;
  /** 0 for the first transaction the server saw, counting every attempt, failed ones too. */
  index: number;
}

export type SmtpRule = SmtpBehaviour | ((transaction: SmtpTransaction) => SmtpBehaviour);

export interface ReceivedMessage extends ParsedMessage {
  /** The message as it came over DATA (line ends as sent, dot-stuffing removed). */
  raw: string;
  /** Envelope sender and recipients, which need not match the From and To headers. */
  envelope: { from: string; to: string[] };
  /** smtp-server's id of the connection that delivered it: equal ids mean a reused connection. */
  sessionId: string;
  /** When the server accepted it (epoch ms). */
  receivedAt: number;
}

export interface TestSmtpServer {
  /** smtp://127.0.0.1:<port>, with user:pass in it when the server was started with credentials. */
  readonly url: string;
  readonly port: number;
  /** Every accepted message, in the order the server accepted them. */
  readonly messages: ReceivedMessage[];
  /** Connections accepted since the start, dropped ones included. */
  readonly connectionsOpened: number;
  /** TCP connections open right now. */
  readonly openConnections: number;
  /**
   * The standing rule for every message that no queued behaviour claims; `accept()` at the
   * start. A function rule is asked at RCPT TO, so it cannot drop at 'connect'; a plain
   * `drop('connect')` rule drops every connection.
   */
  behave(rule: SmtpRule): void;
  /** One-shot behaviours for the next messages (a 'connect' drop: for the next connection). */
  queue(...behaviours: SmtpBehaviour[]): void;
  /** Resolves with `messages` once it holds at least `count`; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Resolves once no client connection is open; rejects after `timeoutMs`. */
  waitForNoConnections(timeoutMs?: number): Promise<void>;
  /** Destroys any connection still open, then stops listening. */
  close(): Promise<void>;
}

export interface SmtpServerOptions {
  /** Require these credentials (AUTH PLAIN/LOGIN, wrong ones get 535); any login or none passes without. */
  credentials?: { user: string; pass: string };
}

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMessage[] = [];
  const sockets = new Map<number, Socket>(); // by client port: the session knows it too
  const oneShots: SmtpBehaviour[] = [];
  const decided = new Map<string, SmtpBehaviour>(); // session id → this transaction's behaviour
  let rule: SmtpRule = accept();
  let connectionsOpened = 0;
  let transactions = 0;

  const dropSession = (session: SMTPServerSession) => sockets.get(session.remotePort)?.destroy();

  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      connectionsOpened += 1;
      const head = oneShots[0];
      if (head?.kind === 'drop' && head.at === 'connect') {
        oneShots.shift();
        return dropSession(session);
      }
      if (typeof rule !== 'function' && rule.kind === 'drop' && rule.at === 'connect')
        return dropSession(session);
      callback();
    },
    onAuth(auth, _session, callback) {
      const wanted = options.credentials;
      if (wanted && (auth.username !== wanted.user || auth.password !== wanted.pass)) {
        return callback(smtpError(535, 'Authentication credentials invalid'));
      }
      callback(null, { user: auth.username ?? 'anonymous' });
    },
    onMailFrom(_address, session, callback) {
      decided.delete(session.id);
      callback();
    },
    onRcptTo(address, session, callback) {
      let behaviour = decided.get(session.id);
      if (!behaviour) {
        const mailFrom = session.envelope.mailFrom;
        const transaction = {
          from: mailFrom ? mailFrom.address : '',
          to: address.address,
          index: transactions++,
        };
        const queued = oneShots.findIndex((b) => !(b.kind === 'drop' && b.at === 'connect'));
        behaviour =
          queued >= 0
            ? oneShots.splice(queued, 1)[0]!
            : typeof rule === 'function'
              ? rule(transaction)
              : rule;
        decided.set(session.id, behaviour);
      }
      if (behaviour.kind === 'drop' && behaviour.at === 'rcpt') return dropSession(session);
      if (behaviour.kind === 'hang') return;
      if (behaviour.kind === 'reject' && behaviour.at === 'rcpt') {
        return callback(smtpError(behaviour.code, behaviour.message));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => undefined);
      stream.on('end', () => {
        const behaviour = decided.get(session.id) ?? accept();
        decided.delete(session.id);
        if (behaviour.kind === 'drop' && behaviour.at === 'data') return dropSession(session);
        if (behaviour.kind === 'reject' && behaviour.at === 'data') {
          return callback(smtpError(behaviour.code, behaviour.message));
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const mailFrom = session.envelope.mailFrom;
        const envelope = {
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        void (async () => {
          if (behaviour.kind === 'accept') {
            if (behaviour.delayMs) await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
            await behaviour.until?.catch(() => undefined);
            // The client gave up (or died) while the server made it wait: nothing was accepted.
            if (!sockets.has(session.remotePort)) return;
          }
          messages.push({
            ...parseMessage(raw),
            raw,
            envelope,
            sessionId: session.id,
            receivedAt: Date.now(),
          });
          callback();
        })();
      });
    },
  });
  server.on('error', () => undefined); // a client's reset socket is no failure of the test server
  // Before smtp-server's own listener, so the socket is known by the time onConnect runs.
  server.server.prependListener('connection', (socket: Socket) => {
    const port = socket.remotePort;
    if (port === undefined) return;
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
  });

  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  const credentials = options.credentials
    ? `${encodeURIComponent(options.credentials.user)}:${encodeURIComponent(options.credentials.pass)}@`
    : '';

  return {
    url: `smtp://${credentials}127.0.0.1:${port}`,
    port,
    messages,
    get connectionsOpened() {
      return connectionsOpened;
    },
    get openConnections() {
      return sockets.size;
    },
    behave(next) {
      rule = next;
    },
    queue(...behaviours) {
      oneShots.push(...behaviours);
    },
    async waitForMessages(count, timeoutMs = 5_000) {
      await waitUntil(
        () => messages.length >= count,
        timeoutMs,
        () => `${count} messages (have ${messages.length})`,
      );
      return messages;
    },
    async waitForNoConnections(timeoutMs = 5_000) {
      await waitUntil(
        () => sockets.size === 0,
        timeoutMs,
        () => `no open connections (have ${sockets.size})`,
      );
    },
    async close() {
      for (const socket of sockets.values()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function smtpError(responseCode: number, message?: string): Error {
  const text = message ?? (responseCode < 500 ? 'Try again later' : 'Requested action not taken');
  return Object.assign(new Error(text), { responseCode });
}

async function waitUntil(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline)
      throw new Error(`smtp test server: timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal MIME reader: enough for the messages nodemailer writes, not a general parser.

export interface MimePart {
  /** Lower-cased header names; each value unfolded, the first occurrence. */
  headers: Map<string, string>;
  /** "text/plain", "text/html", ... without parameters. */
  contentType: string;
  /** The body with its transfer encoding (base64, quoted-printable) undone, read as UTF-8. */
  body: string;
}

export interface ParsedMessage {
  headers: Map<string, string>;
  messageId: string | undefined;
  from: string | undefined;
  to: string | undefined;
  /** Encoded words (=?UTF-8?Q?...?=) decoded. */
  subject: string | undefined;
  /** Every leaf part, in order; a message that is not multipart is one part. */
  parts: MimePart[];
  /** The first text/plain and text/html parts. */
  text: string | undefined;
  html: string | undefined;
}

/** Reads a raw message, as received over SMTP or written to an .eml file. */
export function parseMessage(raw: string): ParsedMessage {
  // The line end before the SMTP terminator (or at the end of the file) is not part of the body.
  const root = parseEntity(raw.replace(/\r\n/g, '\n').replace(/\n$/, ''));
  const parts = leaves(root);
  const header = (name: string) => root.headers.get(name);
  const subject = header('subject');
  return {
    headers: root.headers,
    messageId: header('message-id'),
    from: header('from'),
    to: header('to'),
    subject: subject === undefined ? undefined : decodeEncodedWords(subject),
    parts,
    text: parts.find((p) => p.contentType === 'text/plain')?.body,
    html: parts.find((p) => p.contentType === 'text/html')?.body,
  };
}

interface Entity {
  headers: Map<string, string>;
  body: string;
}

function parseEntity(text: string): Entity {
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function leaves(entity: Entity): MimePart[] {
  const [type = 'text/plain', ...params] = (entity.headers.get('content-type') ?? 'text/plain').split(';');
  const contentType = type.trim().toLowerCase();
  if (contentType.startsWith('multipart/')) {
    const boundary = params
      .map((p) => /^\s*boundary="?([^";]+)"?\s*$/i.exec(p)?.[1])
      .find((b) => b !== undefined);
    if (boundary === undefined) return [];
    const [, ...sections] = entity.body.split(`--${boundary}`);
    return sections
      .filter((section) => !section.startsWith('--'))
      .flatMap((section) => leaves(parseEntity(section.replace(/^\n/, '').replace(/\n$/, ''))));
  }
  return [{ headers: entity.headers, contentType, body: decodeBody(entity) }];
}

function decodeBody(entity: Entity): string {
  const encoding = (entity.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(entity.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(entity.body.replace(/=\n/g, ''));
  return entity.body;
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeEncodedWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?[^?]+\?([BbQq])\?([^?]*)\?=/g, (_, kind: string, text: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}
