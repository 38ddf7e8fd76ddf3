// The webhook channel's request for one message, per body format: pure (the clock and the secret
// are given), so each format's bytes and signature are tested without a network. Each format
// follows its service's public docs, cited at its function.
import { createHmac } from 'node:crypto';
import type { WebhookFormat } from '../config/webhooks.ts';

/** What a message gives every format: its stable id, what it is, and its rendered copy. */
export interface WebhookMessage {
  /** The notification's dedupe key: the same on every attempt, so a receiver can drop a repeat. */
  id: string;
  kind: string;
  category: string;
  audience: 'user' | 'ops';
  userId: string | null;
  locale: string;
  subject: string;
  text: string;
  link: string | null;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The header names of the generic JSON format's signature (README "Webhooks"). */
export const SIGNATURE_HEADER = 'X-Forewarn-Signature';
export const TIMESTAMP_HEADER = 'X-Forewarn-Timestamp';

/** WeCom takes at most 4096 bytes of markdown content (its docs, below). */
const WECOM_MAX_BYTES = 4096;
/** Slack: a header block's text is at most 150 characters, a section's 3000 (Block Kit reference). */
const SLACK_HEADER_MAX = 150;
const SLACK_SECTION_MAX = 3000;

export function webhookRequest(
  format: WebhookFormat,
  target: { url: string; blocks?: boolean },
  message: WebhookMessage,
  options: { secret: string | undefined; now: number },
): WebhookRequest {
  switch (format) {
    case 'json':
      return jsonRequest(target.url, message, requireSecret(format, options.secret), options.now);
    case 'wecom':
      return wecomRequest(target.url, message);
    case 'dingtalk':
      return dingtalkRequest(target.url, message, requireSecret(format, options.secret), options.now);
    case 'slack':
      return slackRequest(target.url, message, target.blocks === true);
  }
}

function requireSecret(format: WebhookFormat, secret: string | undefined): string {
  if (!secret) throw new Error(`the ${format} format signs its requests and no secret is set`);
  return secret;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/**
 * forewarn's own JSON, signed as Stripe signs its webhooks: `X-Forewarn-Signature: t=<unix
 * seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the time also in `X-Forewarn-Timestamp`. The
 * receiver recomputes it over the raw body, compares in constant time, and rejects a `t` older
 * than a few minutes (a replay). The message's id is in the body and in `Idempotency-Key`.
 */
function jsonRequest(url: string, m: WebhookMessage, secret: string, now: number): WebhookRequest {
  const t = Math.floor(now / 1000);
  const body = JSON.stringify({
    id: m.id,
    kind: m.kind,
    category: m.category,
    audience: m.audience,
    userId: m.userId,
    locale: m.locale,
    subject: m.subject,
    text: m.text,
    link: m.link,
    sentAt: new Date(t * 1000).toISOString(),
  });
  return {
    url,
    headers: {
      ...JSON_HEADERS,
      'idempotency-key': m.id,
      [TIMESTAMP_HEADER.toLowerCase()]: String(t),
      [SIGNATURE_HEADER.toLowerCase()]: `t=${t},v1=${jsonSignature(secret, t, body)}`,
    },
    body,
  };
}

/** The v1 signature of the JSON format: hex HMAC-SHA256 over "<unix seconds>.<raw body>". */
export function jsonSignature(secret: string, unixSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
}

/**
 * WeCom group robot (企业微信群机器人, https://developer.work.weixin.qq.com/document/path/91770):
 * POST `{"msgtype":"markdown","markdown":{"content":…}}` to the robot's URL, whose `key` is its
 * credential; content at most 4096 bytes, UTF-8. WeCom answers 200 with `errcode` 0 on success.
 */
function wecomRequest(url: string, m: WebhookMessage): WebhookRequest {
  const content = truncateBytes(markdown(m), WECOM_MAX_BYTES);
  return {
    url,
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({ msgtype: 'markdown', markdown: { content } }),
  };
}

/**
 * DingTalk custom robot (钉钉自定义机器人; security setting "加签",
 * https://open.dingtalk.com/document/robots/customize-robot-security-settings): the URL gets
 * `timestamp` (milliseconds; DingTalk refuses one more than an hour off) and `sign` =
 * urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret))); the body is
 * `{"msgtype":"markdown","markdown":{"title","text"}}`
 * (https://open.dingtalk.com/document/robots/custom-robot-access). It answers 200 with `errcode` 0.
 */
function dingtalkRequest(url: string, m: WebhookMessage, secret: string, now: number): WebhookRequest {
  const signed = new URL(url);
  const timestamp = String(Math.floor(now));
  // URLSearchParams percent-encodes the base64's "+", "/" and "=" (application/x-www-form-urlencoded).
  signed.searchParams.set('timestamp', timestamp);
  signed.searchParams.set('sign', dingtalkSign(secret, timestamp));
  return {
    url: signed.toString(),
    headers: { ...JSON_HEADERS },
    body: JSON.stringify({
      msgtype: 'markdown',
      markdown: { title: m.subject || m.kind, text: markdown(m) },
    }),
  };
}

/** DingTalk's `sign` before URL encoding: base64(HMAC-SHA256(secret, timestamp + "\n" + secret)). */
export function dingtalkSign(secret: string, timestamp: string): string {
  return createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest('base64');
}

/**
 * Slack incoming webhook (https://api.slack.com/messaging/webhooks): POST `{"text": …}`; with
 * blocks, `text` is the notification's fallback. `&`, `<` and `>` are escaped as Slack's
 * formatting docs ask (https://api.slack.com/reference/surfaces/formatting#escaping).
 */
function slackRequest(url: string, m: WebhookMessage, blocks: boolean): WebhookRequest {
  const text = slackEscape(m.subject ? `*${m.subject}*\n\n${m.text}` : m.text);
  const body: Record<string, unknown> = { text };
  if (blocks)
    body.blocks = [
      ...(m.subject
        ? [{ type: 'header', text: { type: 'plain_text', text: m.subject.slice(0, SLACK_HEADER_MAX) } }]
        : []),
      { type: 'section', text: { type: 'mrkdwn', text: slackEscape(m.text).slice(0, SLACK_SECTION_MAX) } },
    ];
  return { url, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
}

const slackEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The subject as a bold first line, the text, and the link, for the chat robots' markdown. */
function markdown(m: WebhookMessage): string {
  const parts = [m.subject ? `**${m.subject}**` : '', m.text, m.link ? `[${m.link}](${m.link})` : ''];
  return parts.filter((p) => p !== '').join('\n\n');
}

/** At most `max` UTF-8 bytes, cut at a character boundary, with "…" when cut. */
function truncateBytes(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  let out = '';
  let bytes = 0;
  const budget = max - Buffer.byteLength('…', 'utf8');
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    out += char;
    bytes += size;
  }
  return `${out}…`;
}
