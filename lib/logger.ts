// Structured logging: pino JSON lines on stderr (stdout belongs to command output), each with a
// `component`, and personal data and secrets masked before anything is written. The masking runs
// on the finished line, so it reaches every depth of the logged object, child-logger bindings,
// error objects (wherever they sit) and the message: personal keys (`email`, `to`, `userId`,
// ...) are masked by name, and email addresses and phone numbers inside any string by pattern.
import pino, { stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Keys whose values are secrets, at any depth: the value is replaced by "[secret]". */
const SECRET_KEYS = new Set([
  'password',
  'pass',
  'secret',
  'linkSecret',
  'linkKeys',
  'apiToken',
  'adminToken',
  'authorization',
  'smtpUrl',
  'databaseUrl',
  'platformDatabaseUrl',
  'redisUrl',
  'privateKey',
  'dkimPrivateKey',
]);
/** Keys whose values are an address, at any depth (also in arrays under them). */
const EMAIL_KEYS = new Set(['email', 'to', 'cc', 'bcc']);
/** Keys whose values identify a person, at any depth. */
const ID_KEYS = new Set(['userId', 'user_id', 'phone', 'mobile']);
/** Keys written as they are: pino's own, and Message-IDs (a hash, shown to correlate with mail logs). */
const VERBATIM_KEYS = new Set(['level', 'time', 'pid', 'messageId']);
/** Objects nested deeper than this are not searched for errors to serialize. */
const MAX_ERROR_DEPTH = 8;

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors are serialized where they are found (formatters.log), this one included; one bound
      // to a child logger is serialized here.
      serializers: { err: (value: unknown) => (value instanceof Error ? stdSerializers.err(value) : value) },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => serializeErrors(object, 0, new WeakSet()) as Record<string, unknown>,
      },
      hooks: { streamWrite: maskLine },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/**
 * One finished log line with personal data and secrets masked. A line is parsed and written again
 * (a few microseconds): what is masked cannot depend on where in the object a value was logged.
 */
export function maskLine(line: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return maskText(line);
  }
  return `${JSON.stringify(maskTree(parsed, undefined))}\n`;
}

function maskTree(value: unknown, key: string | undefined): unknown {
  if (key !== undefined) {
    if (SECRET_KEYS.has(key)) return value === null ? null : '[secret]';
    if (VERBATIM_KEYS.has(key)) return value;
  }
  if (typeof value === 'string') {
    if (key !== undefined && EMAIL_KEYS.has(key)) return maskEmail(value);
    if (key !== undefined && ID_KEYS.has(key)) return maskId(value);
    return maskText(value);
  }
  if (typeof value === 'number') {
    return key !== undefined && ID_KEYS.has(key) ? maskId(String(value)) : value;
  }
  // An array takes its key's rule: `to: [a, b]` masks both addresses.
  if (Array.isArray(value)) return value.map((item) => maskTree(item, key));
  if (typeof value === 'object' && value !== null) {
    const masked: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) masked[k] = maskTree(v, k);
    return masked;
  }
  return value;
}

// An address: RFC 5322 atext and dots, a domain with an alphabetic top-level label (so job ids
// such as "payment-health@<uuid>@2026-03-02T10:00:15.000Z" are left alone).
const EMAIL_PATTERN =
  /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}/g;
// Phone numbers: international with a "+" (8-15 digits, single spaces or dashes between), and
// Chinese mobile numbers (11 digits from 13-19, optionally as 3-4-4); never inside a longer token,
// so timestamps, ids and dates are left alone.
const PHONE_PATTERN = /(?<![\w+])\+\d(?:[ -]?\d){7,14}(?![\w])|(?<![\w.-])1[3-9]\d(?:[ -]?\d{4}){2}(?![\w])/g;
// Credentials in a URL: "scheme://user:password@" keeps the user.
const URL_PASSWORD_PATTERN = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]+@/gi;

/** A message or any other free text with the addresses, phone numbers and URL passwords in it masked. */
export function maskText(text: string): string {
  let masked = text;
  if (masked.includes('://')) masked = masked.replace(URL_PASSWORD_PATTERN, '$1:***@');
  if (masked.includes('@')) {
    masked = masked.replace(EMAIL_PATTERN, (address) =>
      /^\*+@/.test(address) ? address : maskEmail(address),
    );
  }
  if (/\d/.test(masked)) masked = masked.replace(PHONE_PATTERN, maskPhone);
  return masked;
}

/** "zhang.san@example.com" → "z***@example.com". */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return maskId(email);
  return `${email[0]}***${email.slice(at)}`;
}

/** "u-10023" → "u-***23": enough to correlate lines, not to identify. */
export function maskId(id: string): string {
  if (id.length <= 4) return '***';
  return `${id.slice(0, 2)}***${id.slice(-2)}`;
}

/** "13800138000" → "138***00", "+86 138 0013 8000" → "+86***00". */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return `${phone.startsWith('+') ? '+' : ''}${digits.slice(0, phone.startsWith('+') ? 2 : 3)}***${digits.slice(-2)}`;
}

/**
 * The logged object with every Error in it (at any depth, in arrays too) serialized as pino does
 * for `err` (type, message, stack, code, cause...): JSON would write an Error as `{}`. Copies only
 * what it changes; the caller's object is never modified.
 */
function serializeErrors(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value instanceof Error) return stdSerializers.err(value);
  if (typeof value !== 'object' || value === null || depth >= MAX_ERROR_DEPTH || seen.has(value))
    return value;
  seen.add(value);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const next = serializeErrors(item, depth + 1, seen);
      if (next !== item) (copy ??= [...value])[i] = next;
    });
    return copy ?? value;
  }
  // Only plain objects: a Date, a Buffer or a class instance is written as JSON writes it.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [k, item] of Object.entries(value)) {
    const next = serializeErrors(item, depth + 1, seen);
    if (next !== item) (copy ??= { ...value })[k] = next;
  }
  return copy ?? value;
}
