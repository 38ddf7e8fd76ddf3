// The webhook channel: a message is one POST to the target its address names
// (notifications.webhooks.targets: an SMS or push gateway, an ops chat robot), in the target's
// body format (lib/channels/webhook-formats.ts). It carries the email copy (subject and text): a
// channel with no templates of its own. Every failure is sorted here: no answer in time, an
// unreachable host, 408, 429 and 5xx are temporary (retried with delivery's backoff, a
// Retry-After honoured); any other 4xx, a redirect, and a robot's non-zero errcode are permanent.
// Neither a target's URL (a robot's URL is its credential) nor a secret ever appears in a reason.
import { checkWebhookTargets, targetUrl, targetUrlProblem, type WebhookTarget } from '../config/webhooks.ts';
import type { Config } from '../config/schema.ts';
import { maskText } from '../logger.ts';
import { reasonOf } from '../notifications/render.ts';
import type {
  ChannelContext,
  ChannelEnvironment,
  OutgoingMessage,
  SendChannel,
  SendOutcome,
} from './channel.ts';
import { webhookRequest, type WebhookRequest } from './webhook-formats.ts';

/** POSTs in flight per delivery job; each waits at most its target's timeoutMs. */
const IN_FLIGHT = 4;
/** Of an answer's body, only this much is read: enough for a robot's errcode or an error's first line. */
const MAX_ANSWER_BYTES = 4096;
/** A Retry-After longer than this is taken as this (the backoff's own cap still applies after). */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Robots' errcodes that mean "too fast, try later": WeCom 45009 (api freq out of limit, 20 a
 * minute per robot) and -1 (system busy); DingTalk 130101 (send too fast).
 */
const BUSY_ERRCODES = new Set([45009, -1, 130101]);

export const webhookChannel: SendChannel = {
  id: 'webhook',
  kind: 'send',
  needs: 'address',
  template: 'email',
  limits: () => ({ inFlight: IN_FLIGHT, perCall: 1 }),
  send: (messages, ctx) => Promise.all(messages.map((m) => postTo(m.notification.address ?? '', m, ctx))),
};

/** The process's own environment, when the delivery context gives none. */
export const processEnvironment: ChannelEnvironment = {
  secret: (variable) => process.env[variable] || undefined,
  production: process.env.NODE_ENV === 'production',
};

/** The target a notification's address names, or undefined. */
export function webhookTarget(config: Config, id: string): WebhookTarget | undefined {
  return config.notifications.webhooks.targets.find((t) => t.id === id);
}

/**
 * POSTs the message to the target `id` names, in its format, and sorts the answer. The email copy
 * (subject) when the message has one, else the in-app copy (title): the push channel carries that.
 */
export async function postTo(id: string, m: OutgoingMessage, ctx: ChannelContext): Promise<SendOutcome> {
  const n = m.notification;
  const target = webhookTarget(ctx.config, id);
  if (!target)
    return {
      status: 'failed',
      reason: `no webhook target ${JSON.stringify(id)} in notifications.webhooks.targets`,
    };
  const environment = ctx.resources.environment ?? processEnvironment;
  const secret = target.secretEnv ? environment.secret(target.secretEnv) : undefined;
  if (target.secretEnv && !secret)
    return {
      status: 'failed',
      reason: `webhook "${target.id}": environment variable ${target.secretEnv} is not set (its ${target.format} signing secret)`,
    };
  const url = targetUrl(target, environment.secret);
  if (url === undefined)
    return {
      status: 'failed',
      reason: `webhook "${target.id}": environment variable ${target.urlEnv!} is not set (its URL)`,
    };
  const urlProblem = targetUrlProblem(url);
  if (urlProblem) return { status: 'failed', reason: `webhook "${target.id}": its URL: ${urlProblem}` };
  let request: WebhookRequest;
  try {
    // The start refused these in production; a reload may have brought them in since.
    checkWebhookTargets([target], environment);
    request = webhookRequest(
      target.format,
      { url, blocks: target.blocks },
      {
        id: n.dedupeKey,
        kind: n.kind,
        category: n.category,
        audience: n.audience,
        userId: n.userId,
        locale: n.locale,
        subject: m.rendered.subject ?? m.rendered.title ?? '',
        text: m.rendered.text,
        link: m.link,
      },
      { secret, now: Date.now() },
    );
  } catch (error) {
    return { status: 'failed', reason: `webhook "${target.id}": ${reasonOf(error)}` };
  }
  return post(target, request);
}

async function post(target: WebhookTarget, request: WebhookRequest): Promise<SendOutcome> {
  const name = `webhook "${target.id}"`;
  let status: number;
  let retryAfter: string | null;
  let answer: string;
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      // A redirect is not followed: the signed request would go where the config never said.
      redirect: 'manual',
      signal: AbortSignal.timeout(target.timeoutMs),
    });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    answer = await readSome(response);
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError')
      return { status: 'retry', reason: `${name} did not answer within ${target.timeoutMs} ms` };
    return { status: 'retry', reason: `${name} unreachable: ${networkReason(error)}` };
  }
  return outcomeOf(name, status, retryAfter, answer);
}

/** What an answer means: sent, temporary or permanent (exported for its unit test). */
export function outcomeOf(
  name: string,
  status: number,
  retryAfter: string | null,
  answer: string,
): SendOutcome {
  // A gateway's answer may echo the recipient (an SMS gateway, the phone number): masked, as in logs.
  const said = answer.trim() === '' ? '' : `: ${oneLine(maskText(answer))}`;
  if (status >= 200 && status < 300) {
    // The chat robots answer 200 with an errcode in the body.
    const errcode = errcodeOf(answer);
    if (errcode === null || errcode === 0) return { status: 'sent' };
    const reason = `${name} refused it with errcode ${errcode}${said}`;
    return BUSY_ERRCODES.has(errcode) ? { status: 'retry', reason } : { status: 'failed', reason };
  }
  const reason = `${name} answered ${status}${said}`;
  if (status === 408 || status === 429 || status >= 500) {
    const afterMs = retryAfterMs(retryAfter);
    return { status: 'retry', reason, ...(afterMs !== undefined ? { afterMs } : {}) };
  }
  if (status >= 300 && status < 400)
    return { status: 'failed', reason: `${reason} (redirects are not followed)` };
  return { status: 'failed', reason };
}

function errcodeOf(answer: string): number | null {
  if (!answer.trimStart().startsWith('{')) return null;
  try {
    const parsed = JSON.parse(answer) as { errcode?: unknown };
    return typeof parsed.errcode === 'number' ? parsed.errcode : null;
  } catch {
    return null;
  }
}

function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds > 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - Date.now()), MAX_RETRY_AFTER_MS);
}

/** The first MAX_ANSWER_BYTES of the body; the rest is dropped with the connection's stream. */
async function readSome(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/** The network error's code (ECONNREFUSED, ENOTFOUND...), never its message, which may hold the URL. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.name : 'unknown error';
}

const oneLine = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
};
