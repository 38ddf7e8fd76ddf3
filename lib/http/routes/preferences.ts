// The preferences API: the platform reads and writes a user's opt-outs (per message category and
// channel) for its settings page. GET /api/preferences/:userId lists every category on every
// channel, opted in unless stored otherwise; PUT takes changes and writes all of them or none.
// Every call carries `Authorization: Bearer <FOREWARN_API_TOKEN>`, compared in constant time; a
// replica without the token refuses every call (fail closed), and production does not start
// without it (lib/env.ts PRODUCTION_REQUIREMENTS). Refusals write nothing.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { USER_CHANNELS } from '../../config/schema.ts';
import { categories, type Category } from '../../messages/kind.ts';
import { canOptOut, readPreferences, savePreferences, type Preference } from '../../policy/preferences.ts';
import { requireApiToken } from '../auth.ts';
import type { HttpDeps, HttpRoutes } from '../deps.ts';

const PATH = '/api/preferences/:userId';

/** The platform's user ids are opaque text: this much of it, and nothing that needs escaping. */
const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const USER_ID_EXPECTED = '1-128 characters of letters, digits and . _ - : @';

/**
 * The channels users are reached on in this deployment (notifications.userChannels; a webhook
 * target reaches ops, not a user); every channel there is when the server has no config.
 */
const userChannels = (deps: HttpDeps): readonly string[] =>
  deps.config?.().notifications.userChannels ?? USER_CHANNELS;

/** One entry of GET's answer and PUT's: `canOptOut` false for security in-app. */
export interface PreferenceView {
  category: Category;
  channel: string;
  optedOut: boolean;
  canOptOut: boolean;
}

/** Every category on every user channel, opted in unless `stored` says otherwise. */
export function preferenceViews(
  stored: readonly Preference[],
  channelIds: readonly string[],
): PreferenceView[] {
  const out = new Set(stored.filter((p) => p.optedOut).map((p) => `${p.category}\u0000${p.channel}`));
  return categories.flatMap((category) =>
    channelIds.map((channel) => ({
      category,
      channel,
      optedOut: out.has(`${category}\u0000${channel}`),
      canOptOut: canOptOut(category, channel),
    })),
  );
}

/** PUT's body, for the given channel ids. */
export function preferencesBody(channelIds: readonly string[]) {
  const [first, ...rest] = channelIds as [string, ...string[]];
  return z.strictObject({
    preferences: z
      .array(
        z.strictObject({
          category: z.enum(categories, { message: `expected one of ${categories.join(', ')}` }),
          channel: z.enum([first, ...rest], { message: `expected one of ${channelIds.join(', ')}` }),
          optedOut: z.boolean({ message: 'expected true or false' }),
        }),
        { message: 'expected an array of { category, channel, optedOut }' },
      )
      .min(1, 'expected at least one preference')
      .max(categories.length * channelIds.length, 'expected each category and channel at most once'),
  });
}

export type PreferenceChange = Omit<Preference, 'userId'>;

/**
 * The body's changes, or what is wrong with it: the first problem's field path (e.g.
 * `preferences[2].channel`) and what was expected. All or none: one wrong entry refuses the lot.
 */
export function parsePreferencesBody(
  body: unknown,
  channelIds: readonly string[],
): { ok: true; changes: PreferenceChange[] } | { ok: false; field: string; message: string } {
  if (body === undefined || body === null)
    return {
      ok: false,
      field: 'body',
      message: 'expected a JSON object { "preferences": [...] }, got nothing',
    };
  const parsed = preferencesBody(channelIds).safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length === 0 ? 'body' : fieldPath(issue.path);
    // An unknown key's name is in the message, not the path.
    const message =
      issue.code === 'unrecognized_keys'
        ? `unexpected field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: expected only ${
            issue.path.length === 0 ? '"preferences"' : '"category", "channel", "optedOut"'
          }`
        : issue.message;
    return { ok: false, field, message };
  }
  const seen = new Set<string>();
  for (const [i, p] of parsed.data.preferences.entries()) {
    const field = `preferences[${i}]`;
    if (!canOptOut(p.category, p.channel) && p.optedOut)
      return {
        ok: false,
        field,
        message: `${p.category} messages cannot be switched off on ${p.channel}: expected optedOut false`,
      };
    const key = `${p.category}\u0000${p.channel}`;
    if (seen.has(key))
      return {
        ok: false,
        field,
        message: `${p.category} on ${p.channel} is given twice: expected each pair once`,
      };
    seen.add(key);
  }
  return { ok: true, changes: parsed.data.preferences };
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

export const preferencesRoutes: HttpRoutes = {
  parts: ['http:/api/preferences'],
  register(server, deps) {
    if (deps.apiToken === undefined)
      deps.logger.warn(
        { component: 'http', code: 'FW_API_UNAUTHORIZED' },
        'FOREWARN_API_TOKEN is not set: the preferences API refuses every call',
      );
    const authenticate = requireApiToken(deps.apiToken, PATH);
    // A plugin of its own, for an error handler of its own: an API client gets JSON whatever it
    // accepts (a body that is not JSON, or of another content type, included).
    void server.register(async (api) => {
      api.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
        const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
        if (status >= 500) {
          request.log.error({ route: PATH, err: error }, 'request failed');
          return reply
            .code(500)
            .send({ error: 'internal', message: 'something went wrong on our side; nothing was changed' });
        }
        return reply.code(status).send({
          error: 'FW_API_INVALID',
          field: 'body',
          message: `expected a JSON object { "preferences": [...] } sent as application/json: ${error.message}`,
        });
      });
      api.get(PATH, { onRequest: authenticate }, (request, reply) => show(deps, request, reply));
      api.put(PATH, { onRequest: authenticate }, (request, reply) => change(deps, request, reply));
    });
  },
};

function invalid(reply: FastifyReply, field: string, message: string): FastifyReply {
  return reply.code(400).send({ error: 'FW_API_INVALID', field, message });
}

/** The path's user id, or null (and a 400 sent) when it is not one. */
function userIdOf(request: FastifyRequest, reply: FastifyReply): string | null {
  const { userId } = request.params as { userId: string };
  if (USER_ID.test(userId)) return userId;
  // The id itself is not echoed: it may be personal data.
  void invalid(reply, 'userId', `the user id in the path: expected ${USER_ID_EXPECTED}`);
  return null;
}

async function show(deps: HttpDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const userId = userIdOf(request, reply);
  if (userId === null) return reply;
  const stored = await readPreferences(deps.db, userId);
  return reply.send({ userId, preferences: preferenceViews(stored, userChannels(deps)) });
}

async function change(deps: HttpDeps, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const userId = userIdOf(request, reply);
  if (userId === null) return reply;
  const parsed = parsePreferencesBody(request.body, userChannels(deps));
  if (!parsed.ok) return invalid(reply, parsed.field, parsed.message);
  // One statement: every change is written, or none.
  await savePreferences(
    deps.db,
    parsed.changes.map((c) => ({ ...c, userId })),
    'api',
  );
  request.log.info({ route: PATH, userId, changes: parsed.changes.length }, 'preferences saved');
  const stored = await readPreferences(deps.db, userId);
  return reply.send({ userId, preferences: preferenceViews(stored, userChannels(deps)) });
}
