// Structured logging: pino JSON lines on stderr (stdout belongs to command output), each with a
// `component`, and personal data masked before it is written.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

const SECRET_PATHS = [
  'password',
  '*.password',
  'smtpUrl',
  '*.smtpUrl',
  'databaseUrl',
  '*.databaseUrl',
  'redisUrl',
  '*.redisUrl',
];
/** Keys whose values identify a person; they are masked wherever they appear one level deep. */
const PERSONAL_KEYS = ['email', 'to', 'userId', 'user_id', 'phone'];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS, censor: '[secret]' },
      // Serializers reach child-logger bindings too, which `formatters.log` does not.
      serializers: Object.fromEntries(
        PERSONAL_KEYS.map((key) => [key, (value: unknown) => maskValue(key, value)]),
      ),
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => maskPersonalData(object),
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

function maskPersonalData(object: Record<string, unknown>): Record<string, unknown> {
  let masked: Record<string, unknown> | undefined;
  for (const key of PERSONAL_KEYS) {
    const value = object[key];
    if (typeof value === 'string') {
      masked ??= { ...object };
      masked[key] = maskValue(key, value);
    }
  }
  return masked ?? object;
}

function maskValue(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return key === 'email' || key === 'to' ? maskEmail(value) : maskId(value);
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
