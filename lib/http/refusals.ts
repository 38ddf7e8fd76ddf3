// What the HTTP role answers when it will not act: a refused link (missing, malformed, forged,
// for another purpose, expired) or a link about something the platform does not have. Nothing is
// written before these answers. Browsers get a small page in both languages; a client asking for
// JSON gets `{ "error": <code>, "reason": ..., "message": ... }`.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.ts';
import type { LinkRefusal } from '../links.ts';
import { problemPage, type PageLocale } from './pages.ts';

export type Refusal = LinkRefusal | 'unknown-subject';

interface RefusalAnswer {
  status: number;
  code: ErrorCode;
  /** For the JSON answer and the log. */
  message: string;
  page: Record<PageLocale, string>;
}

/**
 * 400: not a token at all; 403: not ours, or not for this page; 410: ours, but expired (Gone:
 * the link worked once, a new message brings a new one); 404: the product is unknown.
 */
export const REFUSALS: Readonly<Record<Refusal, RefusalAnswer>> = {
  malformed: {
    status: 400,
    code: 'FW_LINK_INVALID',
    message: 'the link has no token, or its token is incomplete or malformed',
    page: {
      'zh-CN': '此链接不完整。请从消息中重新打开链接。',
      en: 'This link is incomplete. Please open it again from the message.',
    },
  },
  forged: {
    status: 403,
    code: 'FW_LINK_INVALID',
    message: "the link's signature does not match: it was altered or not issued by this service",
    page: { 'zh-CN': '此链接无效。', en: 'This link is not valid.' },
  },
  'wrong-purpose': {
    status: 403,
    code: 'FW_LINK_INVALID',
    message: 'the link was issued for another action and cannot be used here',
    page: { 'zh-CN': '此链接不能用于此操作。', en: 'This link cannot be used for this action.' },
  },
  expired: {
    status: 410,
    code: 'FW_LINK_INVALID',
    message: 'the link has expired',
    page: {
      'zh-CN': '此链接已过期。新的消息会附上新的链接。',
      en: 'This link has expired. A new message will bring a new link.',
    },
  },
  'unknown-subject': {
    status: 404,
    code: 'FW_LINK_SUBJECT_UNKNOWN',
    message: 'the product this link is about does not exist',
    page: { 'zh-CN': '找不到此商品。', en: 'We could not find this product.' },
  },
};

export function refuse(request: FastifyRequest, reply: FastifyReply, refusal: Refusal): FastifyReply {
  const answer = REFUSALS[refusal];
  request.log.info({ route: request.routeOptions.url, refusal, status: answer.status }, 'link refused');
  reply.code(answer.status);
  if (wantsJson(request)) return reply.send({ error: answer.code, reason: refusal, message: answer.message });
  return reply.type('text/html; charset=utf-8').send(problemPage(answer.page));
}

/** A client that asks for JSON and not for HTML (an API client, a test, the platform's backend). */
export function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}
