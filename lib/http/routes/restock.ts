// The restock links: /restock/subscribe (from a low-stock notice: "tell me when it is back") and
// /restock/stop (from a restock alert: "stop alerts for this product"). GET shows what the link
// will do, in the user's language, with a button; only the POST acts, so that a mail scanner
// that opens every link changes nothing. The token names the user and the product and is checked
// for the route's own purpose; any refusal writes nothing.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { inTransaction, type Pool } from '../../db/pool.ts';
import { checkLinkToken, RESTOCK_STOP, RESTOCK_SUBSCRIBE } from '../../links.ts';
import { readProductName } from '../../platform/product-names.ts';
import { readUserLocale } from '../../platform/user-locales.ts';
import { recordRestockOptout, recordRestockRequest, removeRestockOptout } from '../../restock/requests.ts';
import type { RestockKey } from '../../restock/requests.ts';
import type { HttpDeps, HttpRoutes } from '../deps.ts';
import { confirmPage, donePage, pageLocale, type PageLocale } from '../pages.ts';
import { refuse, wantsJson } from '../refusals.ts';

interface Copy {
  title: string;
  confirm: (product: string) => string;
  button: string;
  doneTitle: string;
  done: (product: string) => string;
}

interface LinkAction {
  path: string;
  purpose: string;
  copy: Record<PageLocale, Copy>;
  /** What the POST records; `logged` is the log line's message. */
  act: (db: Pool, key: RestockKey) => Promise<void>;
  logged: string;
}

const subscribe: LinkAction = {
  path: '/restock/subscribe',
  purpose: RESTOCK_SUBSCRIBE,
  copy: {
    'zh-CN': {
      title: '到货提醒',
      confirm: (product) => `「${product}」补货后，我们会通知您。需要到货提醒吗？`,
      button: '到货提醒我',
      doneTitle: '已登记到货提醒',
      done: (product) => `「${product}」补货后，我们会第一时间通知您。`,
    },
    en: {
      title: 'Restock reminder',
      confirm: (product) => `Would you like us to tell you when “${product}” is back in stock?`,
      button: 'Remind me',
      doneTitle: 'Reminder set',
      done: (product) => `We will let you know as soon as “${product}” is back in stock.`,
    },
  },
  // Asking for a reminder again also takes back an earlier "stop alerts" for the product.
  act: (db, key) =>
    inTransaction(db, async (client) => {
      await recordRestockRequest(client, key);
      await removeRestockOptout(client, key);
    }),
  logged: 'restock reminder recorded',
};

const stop: LinkAction = {
  path: '/restock/stop',
  purpose: RESTOCK_STOP,
  copy: {
    'zh-CN': {
      title: '停止到货提醒',
      confirm: (product) => `不再接收「${product}」的到货提醒吗？`,
      button: '停止提醒',
      doneTitle: '已停止到货提醒',
      done: (product) => `您将不再收到「${product}」的到货提醒。`,
    },
    en: {
      title: 'Stop restock alerts',
      confirm: (product) => `Stop alerts when “${product}” is back in stock?`,
      button: 'Stop alerts',
      doneTitle: 'Alerts stopped',
      done: (product) => `You will no longer get restock alerts for “${product}”.`,
    },
  },
  act: (db, key) => recordRestockOptout(db, key),
  logged: 'restock alerts stopped',
};

export const restockRoutes: HttpRoutes = {
  parts: [subscribe, stop].map((action) => `http:${action.path}`),
  register(server, deps) {
    for (const action of [subscribe, stop]) {
      server.get(action.path, (request, reply) => serve(action, deps, request, reply, false));
      server.post(action.path, (request, reply) => serve(action, deps, request, reply, true));
    }
  },
};

async function serve(
  action: LinkAction,
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  post: boolean,
): Promise<FastifyReply> {
  // A POST takes the token from its form (the confirmation page's button) or, failing that, the query.
  const token = (post ? field(request.body, 'token') : undefined) ?? field(request.query, 'token');
  const check = checkLinkToken(token, deps.linkKeys, Math.floor(deps.now() / 1000), action.purpose);
  if (!check.ok) return refuse(request, reply, check.reason);
  const { userId, subject: productId } = check.claims;
  // Our builders always name the product; a token without one is not a restock link.
  if (productId === undefined || productId === '') return refuse(request, reply, 'malformed');
  const [productName, userLocale] = await Promise.all([
    readProductName(deps.platformDb, deps.platformSchema, productId),
    readUserLocale(deps.platformDb, deps.platformSchema, userId),
  ]);
  if (productName === null) return refuse(request, reply, 'unknown-subject');
  const locale = pageLocale(userLocale);
  const copy = action.copy[locale];
  reply.type('text/html; charset=utf-8');
  if (!post) {
    return reply.send(
      confirmPage({
        locale,
        title: copy.title,
        text: copy.confirm(productName),
        button: copy.button,
        // Relative: resolved against the page's own URL, whatever prefix the role is served under.
        action: action.path.slice(action.path.lastIndexOf('/') + 1),
        token: token!,
      }),
    );
  }
  await action.act(deps.db, { userId, productId });
  request.log.info({ route: action.path, userId, productId }, action.logged);
  if (wantsJson(request))
    return reply.type('application/json').send({ status: 'done', purpose: action.purpose, productId });
  return reply.send(donePage(locale, copy.doneTitle, copy.done(productName)));
}

/** A single string field of a parsed query or form; anything else (absent, repeated) is undefined. */
function field(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value = (source as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}
