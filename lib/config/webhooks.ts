// The webhook channel's targets (notifications.webhooks.targets): where each POSTs, in which body
// format, and the environment variable holding its secret (never the secret itself). A bad
// target is refused with its id in the message. Plain http is taken only for a loopback host, a
// local receiver in development; production refuses even that at start (checkWebhookTargets).
import { z } from 'zod';
import { ForewarnError } from '../errors.ts';

export const webhookFormats = ['json', 'wecom', 'dingtalk', 'slack'] as const;
export type WebhookFormat = (typeof webhookFormats)[number];

/** Formats whose requests are signed with a secret, and those whose URL is the secret itself. */
const SIGNED: ReadonlySet<WebhookFormat> = new Set(['json', 'dingtalk']);

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export const webhookTargetSchema = z.strictObject({
  /** The target's name: the notification's address, and what logs and errors call it. */
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected an id of lowercase letters, digits, "-" and "_"'),
  /** Where it POSTs; or, for a URL that is itself the credential (a WeCom or Slack robot's), urlEnv. */
  url: z.url({ protocol: /^https?$/, message: 'expected an https URL' }).optional(),
  /** The environment variable that holds the URL. */
  urlEnv: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]*$/, 'expected the name of an environment variable, e.g. FOREWARN_WEBHOOK_OPS_URL')
    .optional(),
  format: z.enum(webhookFormats),
  /** The environment variable that holds the signing secret (json, dingtalk). */
  secretEnv: z
    .string()
    .regex(
      /^[A-Z][A-Z0-9_]*$/,
      'expected the name of an environment variable, e.g. FOREWARN_WEBHOOK_OPS_SECRET',
    )
    .optional(),
  /** A request not answered within this long is abandoned and retried. */
  timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  /** slack only: add Block Kit blocks (a header with the subject, a section with the text). */
  blocks: z.boolean().default(false),
});
export type WebhookTarget = z.infer<typeof webhookTargetSchema>;

export const webhooksConfigSchema = z
  .strictObject({ targets: z.array(webhookTargetSchema).default([]) })
  .superRefine(({ targets }, ctx) => {
    const seen = new Set<string>();
    targets.forEach((t, i) => {
      const problem = (key: string, message: string, input: unknown) =>
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, key],
          input,
          message: `${message} (target "${t.id}")`,
        });
      if (seen.has(t.id)) problem('id', 'expected each target id once', `${t.id} twice`);
      seen.add(t.id);
      if ((t.url === undefined) === (t.urlEnv === undefined))
        problem(
          'url',
          'expected either url or urlEnv (the environment variable holding the URL), not both or neither',
          t.url === undefined ? undefined : 'both',
        );
      const urlProblem = t.url === undefined ? null : targetUrlProblem(t.url);
      if (urlProblem) problem('url', urlProblem, redacted(new URL(t.url!)));
      if (SIGNED.has(t.format) && t.secretEnv === undefined)
        problem(
          'secretEnv',
          `expected the environment variable holding the ${t.format} signing secret`,
          undefined,
        );
      if (!SIGNED.has(t.format) && t.secretEnv !== undefined)
        problem(
          'secretEnv',
          `expected none: ${t.format} requests are not signed (its URL is the secret)`,
          t.secretEnv,
        );
      if (t.blocks && t.format !== 'slack') problem('blocks', 'expected only on a slack target', t.blocks);
    });
  });

/** What is wrong with a target's URL (from the file or its urlEnv), or null. */
export function targetUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'expected an https URL, got something that does not parse as a URL';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) return null;
  return 'expected an https URL (plain http only to localhost, for a receiver in development)';
}

/** The target's URL: from the file, or from its urlEnv; undefined when that variable is unset. */
export function targetUrl(
  target: WebhookTarget,
  secret: (variable: string) => string | undefined,
): string | undefined {
  return target.url ?? secret(target.urlEnv!);
}

/** A URL as errors may show it: its query (a robot's key or token) and path replaced. */
export function redacted(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/**
 * What production refuses at start: a plain http target, and a secret variable that is not set
 * (names, never values). Development lets both by; a send to such a target fails with the reason.
 */
export function checkWebhookTargets(
  targets: readonly WebhookTarget[],
  options: { production: boolean; secret: (variable: string) => string | undefined },
): void {
  if (!options.production) return;
  const lines: string[] = [];
  for (const t of targets) {
    const url = targetUrl(t, options.secret);
    if (url === undefined)
      lines.push(
        `environment variable ${t.urlEnv!}: required with NODE_ENV=production by webhook target "${t.id}": expected its https URL, got nothing`,
      );
    else if (targetUrlProblem(url) !== null || new URL(url).protocol !== 'https:')
      lines.push(
        `notifications.webhooks.targets "${t.id}": ${t.url === undefined ? `the URL in ${t.urlEnv!}` : 'url'}: expected https with NODE_ENV=production, got something else`,
      );
    if (t.secretEnv !== undefined && !options.secret(t.secretEnv))
      lines.push(
        `environment variable ${t.secretEnv}: required with NODE_ENV=production by webhook target "${t.id}": expected its ${t.format} signing secret, got nothing`,
      );
  }
  if (lines.length > 0) throw new ForewarnError('FW_ENV_MISSING', lines.join('\n'));
}
