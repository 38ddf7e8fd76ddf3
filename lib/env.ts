// Connections and paths from the environment, validated once. Secrets stay here: nothing logs
// this object, and `redactUrl` is what any message about a connection must use. With
// NODE_ENV=production nothing falls back to a development default where it matters: what each
// part of the daemon needs is a declared list, checked at start for the parts that run.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/** `SMTP_URL=outbox:<dir>`: email as .eml files, chosen explicitly (the only way in production). */
export const OUTBOX_SCHEME = 'outbox:';

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
  /**
   * Where mail goes: an SMTP server, or `outbox:<dir>` (`outbox:` alone: FOREWARN_OUTBOX) for .eml
   * files, chosen on purpose. Unset, development writes to the outbox; production refuses.
   */
  SMTP_URL: z
    .string()
    .refine((value) => value.startsWith(OUTBOX_SCHEME) || url(['smtp:', 'smtps:']).safeParse(value).success, {
      message: `expected a URL starting with smtp:// or smtps://, or ${OUTBOX_SCHEME}<dir> for .eml files`,
    })
    .optional(),
  FOREWARN_OUTBOX: z.string().min(1).default('./outbox'),
  /** Signs links that act on an account (at least 32 characters). */
  FOREWARN_LINK_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  /**
   * Secrets FOREWARN_LINK_SECRET replaced, comma-separated: links they signed still verify until
   * they are removed from here (README.md#rotating-the-link-secret).
   */
  FOREWARN_LINK_SECRETS_OLD: z
    .string()
    .transform((value) => value.split(',').map((secret) => secret.trim()))
    .superRefine((secrets, ctx) => {
      secrets.forEach((secret, i) => {
        if (secret.length < 32) {
          // Which entry, never its value.
          ctx.addIssue({
            code: 'custom',
            message: `entry ${i + 1} of ${secrets.length}: expected a comma-separated list of secrets of at least 32 characters each${secret === '' ? ' (this one is empty: a stray comma?)' : ''}`,
          });
        }
      });
    })
    .optional(),
  /** The DKIM signing key, PEM (a key file's contents), or the path of a PEM file; at most one. */
  FOREWARN_DKIM_PRIVATE_KEY: z.string().optional(),
  FOREWARN_DKIM_PRIVATE_KEY_FILE: z.string().optional(),
  /** The bearer token of the preferences API (at least 32 characters), shared with the platform. */
  FOREWARN_API_TOKEN: z.string().min(32, 'expected at least 32 characters').optional(),
  /** The token of ops tools on the HTTP role (queue dashboard, template studio), at least 32 characters. */
  FOREWARN_ADMIN_TOKEN: z.string().min(32, 'expected at least 32 characters').optional(),
  /** Where the HTTP role listens (`forewarn start --role http`). */
  FOREWARN_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  FOREWARN_HTTP_PORT: z.coerce
    .number({ message: 'expected a port number from 0 to 65535' })
    .int('expected a port number from 0 to 65535')
    .min(0, 'expected a port number from 0 to 65535')
    .max(65_535, 'expected a port number from 0 to 65535')
    .default(8787),
  /**
   * Where users reach the HTTP role from the outside, e.g. https://notify.example.com (a path
   * prefix is kept): the base of the restock links in messages. Unset in development: the HTTP
   * role's own address.
   */
  FOREWARN_PUBLIC_URL: url(['http:', 'https:']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** "production" turns missing settings into refusals (checkProductionEnv); anything else is development. */
  NODE_ENV: z.string().optional(),
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
  /** NODE_ENV=production. */
  production: boolean;
  /** The SMTP server's URL; undefined when email goes to the outbox. */
  smtpUrl: string | undefined;
  /**
   * How email leaves: through `smtpUrl`, to the outbox chosen with SMTP_URL=outbox:<dir>, or to
   * the outbox because SMTP_URL is unset (development only).
   */
  emailTransport: 'smtp' | 'outbox' | 'default-outbox';
  /** Where .eml files are written when email goes to the outbox. */
  outboxDir: string;
  linkSecret: string | undefined;
  /** FOREWARN_LINK_SECRETS_OLD: secrets that verify links but no longer sign them. */
  oldLinkSecrets: readonly string[];
  /**
   * The DKIM signing key (PEM, checked to be an RSA private key), from FOREWARN_DKIM_PRIVATE_KEY
   * or the file FOREWARN_DKIM_PRIVATE_KEY_FILE names; undefined: mail is not signed.
   */
  dkimPrivateKey: string | undefined;
  /** FOREWARN_API_TOKEN: what the preferences API's callers must present; unset, it refuses every call. */
  apiToken: string | undefined;
  /**
   * FOREWARN_ADMIN_TOKEN: what ops tools on the HTTP role (queue dashboard, template studio) ask
   * for, as a bearer token or basic auth's password; unset, they refuse every request.
   */
  adminToken: string | undefined;
  /** Where the HTTP role listens. */
  httpHost: string;
  httpPort: number;
  /** FOREWARN_PUBLIC_URL; use publicUrlOf(env), which falls back in development only. */
  publicUrl: string | undefined;
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
  const outbox = e.SMTP_URL?.startsWith(OUTBOX_SCHEME) ? e.SMTP_URL.slice(OUTBOX_SCHEME.length) : undefined;
  return {
    databaseUrl: e.DATABASE_URL,
    platformDatabaseUrl: e.PLATFORM_DATABASE_URL ?? e.DATABASE_URL,
    platformSchema: e.PLATFORM_SCHEMA,
    redisUrl: e.REDIS_URL,
    configPath: e.FOREWARN_CONFIG,
    queuePrefix: e.FOREWARN_QUEUE_PREFIX,
    logLevel: e.LOG_LEVEL,
    production: e.NODE_ENV === 'production',
    smtpUrl: outbox === undefined ? e.SMTP_URL : undefined,
    emailTransport: e.SMTP_URL === undefined ? 'default-outbox' : outbox === undefined ? 'smtp' : 'outbox',
    outboxDir: outbox || e.FOREWARN_OUTBOX,
    linkSecret: e.FOREWARN_LINK_SECRET,
    oldLinkSecrets: e.FOREWARN_LINK_SECRETS_OLD ?? [],
    dkimPrivateKey: readDkimPrivateKey(e.FOREWARN_DKIM_PRIVATE_KEY, e.FOREWARN_DKIM_PRIVATE_KEY_FILE),
    apiToken: e.FOREWARN_API_TOKEN,
    adminToken: e.FOREWARN_ADMIN_TOKEN,
    httpHost: e.FOREWARN_HTTP_HOST,
    httpPort: e.FOREWARN_HTTP_PORT,
    publicUrl: e.FOREWARN_PUBLIC_URL,
  };
}

const DKIM_KEY_EXPECTED =
  'an RSA private key in PEM ("-----BEGIN PRIVATE KEY-----" or "-----BEGIN RSA PRIVATE KEY-----", 1024 bits or more; 2048 recommended)';

/**
 * The DKIM key from the environment, checked here so that a bad one stops the start: nodemailer
 * signs with rsa-sha256 only and, should signing fail, sends the message unsigned without a word.
 * Messages name the variable and what was expected, never the key.
 */
function readDkimPrivateKey(inline: string | undefined, file: string | undefined): string | undefined {
  if (inline !== undefined && file !== undefined) {
    throw new ForewarnError(
      'FW_ENV_INVALID',
      'environment variables FOREWARN_DKIM_PRIVATE_KEY and FOREWARN_DKIM_PRIVATE_KEY_FILE: expected at most one of them, got both',
    );
  }
  let pem: string;
  let variable: string;
  if (inline !== undefined) {
    variable = 'FOREWARN_DKIM_PRIVATE_KEY';
    // A PEM in a one-line variable often arrives with its line breaks written as "\n".
    pem = inline.includes('\\n') && !inline.includes('\n') ? inline.replace(/\\n/g, '\n') : inline;
  } else if (file !== undefined) {
    variable = 'FOREWARN_DKIM_PRIVATE_KEY_FILE';
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new ForewarnError(
        'FW_ENV_INVALID',
        `environment variable ${variable}: cannot read ${JSON.stringify(file)} (${typeof code === 'string' ? code : String(error)}): expected the path of a file holding ${DKIM_KEY_EXPECTED}`,
        { cause: error },
      );
    }
  } else {
    return undefined;
  }
  let key;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new ForewarnError(
      'FW_ENV_INVALID',
      `environment variable ${variable}: expected ${DKIM_KEY_EXPECTED}, got something that does not parse as a private key`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined || bits < 1024) {
    throw new ForewarnError(
      'FW_ENV_INVALID',
      `environment variable ${variable}: expected ${DKIM_KEY_EXPECTED}, got ${key.asymmetricKeyType === 'rsa' ? `an RSA key of ${bits ?? 'unknown'} bits` : `a key of type ${key.asymmetricKeyType ?? 'unknown'}`}`,
    );
  }
  return pem;
}

/**
 * The base of public links (FOREWARN_PUBLIC_URL). In development, unset, it is the HTTP role's own
 * address; in production a link to a made-up address would reach nobody, so it is an error.
 */
export function publicUrlOf(env: Env): string {
  if (env.publicUrl !== undefined) return env.publicUrl;
  if (env.production) {
    throw new ForewarnError(
      'FW_ENV_MISSING',
      `environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production to build public links: expected ${PUBLIC_URL_EXPECTED}, got nothing`,
    );
  }
  const host = env.httpHost.includes(':') ? `[${env.httpHost}]` : env.httpHost;
  return `http://${host}:${env.httpPort}`;
}

const PUBLIC_URL_EXPECTED =
  "the http(s) URL where users reach forewarn's HTTP role, e.g. https://notify.example.com (links in messages point there)";

/**
 * A setting that a part of forewarn cannot do without in production. `neededBy` names the parts:
 * daemon roles ("notifications") and, once the HTTP role serves them, its routes
 * ("http:POST /restock/subscribe"); a part that needs a secret adds itself here, and the
 * process that runs it passes its name to checkProductionEnv.
 */
export interface ProductionRequirement {
  variable: string;
  /** What it must hold, and why, for the message. */
  expected: string;
  neededBy: readonly string[];
  isSet(env: Env): boolean;
  /** What it holds instead, for the message, when it is set but not as expected; default "nothing". */
  got?(env: Env): string;
}

export const PRODUCTION_REQUIREMENTS: readonly ProductionRequirement[] = [
  {
    variable: 'SMTP_URL',
    expected:
      'smtp://user:pass@host:587 or smtps://user:pass@host:465 (email is sent there), ' +
      `or ${OUTBOX_SCHEME}<dir> to write .eml files instead, on purpose`,
    neededBy: ['notifications'],
    isSet: (env) => env.emailTransport !== 'default-outbox',
  },
  {
    variable: 'FOREWARN_LINK_SECRET',
    expected:
      'at least 32 characters, the same on every replica and known to the platform ' +
      '(it signs the links in messages; a secret made up per process signs links nobody can verify)',
    neededBy: ['notifications', 'http:/restock/subscribe', 'http:/restock/stop', 'http:/unsubscribe'],
    isSet: (env) => env.linkSecret !== undefined,
  },
  {
    variable: 'FOREWARN_PUBLIC_URL',
    expected: PUBLIC_URL_EXPECTED,
    // The notifications role builds the restock links that messages carry.
    neededBy: ['notifications', 'http'],
    isSet: (env) => env.publicUrl !== undefined,
  },
  {
    variable: 'FOREWARN_PUBLIC_URL',
    expected:
      'an https URL: the List-Unsubscribe header of emails points there, and mail providers take ' +
      'only https for one-click unsubscribe (RFC 8058)',
    neededBy: ['notifications', 'http:/unsubscribe'],
    // Unset is the requirement above's refusal; this one is about an http:// URL.
    isSet: (env) => env.publicUrl === undefined || env.publicUrl.startsWith('https:'),
    got: () => 'an http:// URL',
  },
  {
    variable: 'FOREWARN_API_TOKEN',
    expected:
      'at least 32 characters, known to the platform (its calls to the preferences and channel-status APIs carry it as a bearer token)',
    neededBy: ['http:/api/preferences', 'http:/api/channels/status'],
    isSet: (env) => env.apiToken !== undefined,
  },
  {
    variable: 'FOREWARN_ADMIN_TOKEN',
    expected:
      'at least 32 characters, known to ops only (the queue dashboard and the template studio ask for it, as a bearer token or as the password of basic auth)',
    neededBy: ['http:/admin/queues', 'http:/admin/studio'],
    isSet: (env) => env.adminToken !== undefined,
  },
];

/**
 * With NODE_ENV=production, refuses to go on when a setting that one of `parts` needs is missing,
 * naming every such variable and what it expects (never a value). Does nothing in development.
 */
export function checkProductionEnv(
  env: Env,
  parts: readonly string[],
  requirements: readonly ProductionRequirement[] = PRODUCTION_REQUIREMENTS,
): void {
  if (!env.production) return;
  const lines: string[] = [];
  for (const requirement of requirements) {
    const needing = requirement.neededBy.filter((part) => parts.includes(part));
    if (needing.length === 0 || requirement.isSet(env)) continue;
    lines.push(
      `environment variable ${requirement.variable}: required with NODE_ENV=production by ${needing.map(describePart).join(' and ')}: ` +
        `expected ${requirement.expected}, got ${requirement.got?.(env) ?? 'nothing'}`,
    );
  }
  if (lines.length > 0) throw new ForewarnError('FW_ENV_MISSING', lines.join('\n'));
}

const describePart = (part: string) =>
  part.startsWith('http:') ? `the HTTP route ${part.slice('http:'.length)}` : `the ${part} role`;

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
