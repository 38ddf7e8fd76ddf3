// Connections and paths from the environment, validated once. Secrets stay here: nothing logs
// this object, and `redactUrl` is what any message about a connection must use.
import { z } from 'zod';
import { ForewarnError } from './errors.ts';

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const envSchema = z.object({
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/forewarn'),
  PLATFORM_DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  PLATFORM_SCHEMA: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'expected a plain SQL identifier such as "platform"')
    .default('platform'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  FOREWARN_CONFIG: z.string().min(1).default('config/forewarn.yaml'),
  /**
   * Prefix of every BullMQ key. Unset, it is derived from the deployment id (lib/queue/identity.ts),
   * so deployments sharing one Redis never meet; set, no other deployment may use the same value.
   */
  FOREWARN_QUEUE_PREFIX: z.string().min(1).optional(),
  /** Where mail goes; without it, messages are written as .eml files into FOREWARN_OUTBOX. */
  SMTP_URL: url(['smtp:', 'smtps:']).optional(),
  FOREWARN_OUTBOX: z.string().min(1).default('./outbox'),
  /** Signs links that act on an account (at least 32 characters). */
  FOREWARN_LINK_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Env {
  databaseUrl: string;
  platformDatabaseUrl: string;
  platformSchema: string;
  redisUrl: string;
  configPath: string;
  /** FOREWARN_QUEUE_PREFIX when set; otherwise the context derives one from the deployment id. */
  queuePrefix: string | undefined;
  logLevel: string;
  smtpUrl: string | undefined;
  outboxDir: string;
  linkSecret: string | undefined;
}

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = envSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const name = issue.path.join('.');
      // The value may hold a password: say what was wrong, never echo it.
      return `environment variable ${name}: ${issue.message}`;
    });
    throw new ForewarnError('FW_ENV_INVALID', lines.join('\n'));
  }
  const e = result.data;
  return {
    databaseUrl: e.DATABASE_URL,
    platformDatabaseUrl: e.PLATFORM_DATABASE_URL ?? e.DATABASE_URL,
    platformSchema: e.PLATFORM_SCHEMA,
    redisUrl: e.REDIS_URL,
    configPath: e.FOREWARN_CONFIG,
    queuePrefix: e.FOREWARN_QUEUE_PREFIX,
    logLevel: e.LOG_LEVEL,
    smtpUrl: e.SMTP_URL,
    outboxDir: e.FOREWARN_OUTBOX,
    linkSecret: e.FOREWARN_LINK_SECRET,
  };
}

/** The URL with any password replaced, safe to print. */
export function redactUrl(value: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
