// The unsubscribe link of users' emails (List-Unsubscribe and the footer, lib/messages/unsubscribe.ts):
// /unsubscribe?token=…, the token naming the user, the category and the channel. GET shows what
// will stop, in the user's language, with a button; POST stops it at once, both from that button
// and as RFC 8058's one-click unsubscribe (a mail provider POSTs `List-Unsubscribe=One-Click`
// to the header's URL, the token in its query). The opt-out is recorded in forewarn.preferences
// (source "unsubscribe"); doing it twice changes nothing more. Any refusal writes nothing.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkLinkToken, UNSUBSCRIBE, unsubscribeSubject } from '../../links.ts';
import { categories, type Category } from '../../messages/kind.ts';
import { readUserLocale } from '../../platform/user-locales.ts';
import { canOptOut, savePreferences } from '../../policy/preferences.ts';
import type { HttpDeps, HttpRoutes } from '../deps.ts';
import { confirmPage, donePage, pageLocale, type PageLocale } from '../pages.ts';
import { refuse, wantsJson } from '../refusals.ts';

const PATH = '/unsubscribe';

/** What each category is called on the pages ("promotional messages", "by email"). */
const CATEGORY_NAMES: Record<PageLocale, Record<Category, string>> = {
  'zh-CN': {
    service: '付款和库存提醒',
    requested: '到货提醒',
    promotional: '推广消息',
    security: '账户安全提醒',
    ops: '运维告警',
  },
  en: {
    service: 'payment and stock warnings',
    requested: 'restock alerts',
    promotional: 'promotional messages',
    security: 'account security check-ups',
    ops: 'operations alerts',
  },
};

const CHANNEL_NAMES: Record<PageLocale, Record<string, string>> = {
  'zh-CN': { email: '邮件', inapp: '站内消息' },
  en: { email: 'by email', inapp: 'in the app' },
};

const COPY: Record<
  PageLocale,
  {
    title: string;
    confirm: (what: string, how: string) => string;
    button: string;
    doneTitle: string;
    done: (what: string, how: string) => string;
  }
> = {
  'zh-CN': {
    title: '退订',
    confirm: (what, how) => `不再通过${how}接收${what}吗？`,
    button: '确认退订',
    doneTitle: '已退订',
    done: (what, how) => `您将不再通过${how}收到${what}。`,
  },
  en: {
    title: 'Unsubscribe',
    confirm: (what, how) => `Stop ${what} ${how}?`,
    button: 'Unsubscribe',
    doneTitle: 'Unsubscribed',
    done: (what, how) => `You will no longer get ${what} ${how}.`,
  },
};

export const unsubscribeRoutes: HttpRoutes = {
  parts: [`http:${PATH}`],
  register(server, deps) {
    // Its own scope: the one-click POST may come as multipart/form-data (RFC 8058 prefers it),
    // which no other route takes. Its body says nothing the URL does not: it is not read.
    void server.register(async (scope: FastifyInstance) => {
      scope.addContentTypeParser('multipart/form-data', { parseAs: 'string' }, (_request, _body, done) =>
        done(null, {}),
      );
      scope.get(PATH, (request, reply) => serve(deps, request, reply, false));
      scope.post(PATH, (request, reply) => serve(deps, request, reply, true));
    });
  },
};

async function serve(
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  post: boolean,
): Promise<FastifyReply> {
  // One-click puts the token in the URL; the page's button posts it in its form.
  const token = (post ? field(request.body, 'token') : undefined) ?? field(request.query, 'token');
  const check = checkLinkToken(token, deps.linkKeys, Math.floor(deps.now() / 1000), UNSUBSCRIBE);
  if (!check.ok) return refuse(request, reply, check.reason);
  const { userId } = check.claims;
  const named = unsubscribeSubject(check.claims.subject);
  // Our builder names a category a user may stop on that channel; anything else is no unsubscribe link.
  if (named === null || !isCategory(named.category) || !canOptOut(named.category, named.channel)) {
    return refuse(request, reply, 'malformed');
  }
  const category = named.category;
  const { channel } = named;
  const locale = pageLocale(await readUserLocale(deps.platformDb, deps.platformSchema, userId));
  const copy = COPY[locale];
  const what = CATEGORY_NAMES[locale][category];
  const how = CHANNEL_NAMES[locale][channel] ?? channel;
  if (!post) {
    return reply.type('text/html; charset=utf-8').send(
      confirmPage({
        locale,
        title: copy.title,
        text: copy.confirm(what, how),
        button: copy.button,
        // Relative: resolved against the page's own URL, whatever prefix the role is served under.
        action: PATH.slice(1),
        token: token!,
      }),
    );
  }
  await savePreferences(deps.db, [{ userId, category, channel, optedOut: true }], 'unsubscribe');
  request.log.info({ route: PATH, userId, category, channel }, 'unsubscribed');
  if (wantsJson(request)) {
    return reply.type('application/json').send({ status: 'done', purpose: UNSUBSCRIBE, category, channel });
  }
  return reply.type('text/html; charset=utf-8').send(donePage(locale, copy.doneTitle, copy.done(what, how)));
}

function isCategory(value: string): value is Category {
  return (categories as readonly string[]).includes(value);
}

/** A single string field of a parsed query or form; anything else (absent, repeated) is undefined. */
function field(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value = (source as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}
