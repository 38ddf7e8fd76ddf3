// The unsubscribe link fan-out adds to a message's data: only users' emails of the categories a
// user can stop by email, signed for the user, the category and the channel, expiring
// unsubscribeTtlDays after the message is recorded (a fixed clock here). Every kind of those
// categories sent by email declares the variable, so its templates can show it.
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { checkLinkToken, linkKeyring, UNSUBSCRIBE } from '../../lib/links.ts';
import { categories } from '../../lib/messages/kind.ts';
import { messageKinds } from '../../lib/messages/registry.ts';
import { UNSUBSCRIBABLE_BY_EMAIL, withUnsubscribeLink } from '../../lib/messages/unsubscribe.ts';
import { templateKinds, type TemplateKind } from '../../templates/kinds.ts';

const KEYS = linkKeyring('unsubscribe-unit-secret-0123456789abcdef');
const NOW_MS = Date.UTC(2026, 11, 4, 12, 0, 0);
const shipped = await loadConfigFile('config/forewarn.yaml');
const config: Config = {
  ...shipped,
  notifications: {
    ...shipped.notifications,
    links: { ...shipped.notifications.links, unsubscribeTtlDays: 45 },
  },
};
const ctx = { config: () => config, linkKeys: KEYS, publicUrl: 'https://notify.example.com/fw' };

describe('withUnsubscribeLink', () => {
  it('adds a signed link to emails of service, requested and promotional messages', () => {
    for (const category of ['service', 'requested', 'promotional'] as const) {
      const data = withUnsubscribeLink(ctx, { category, channel: 'email', userId: 'u1' }, { a: 1 }, NOW_MS);
      expect(data.a).toBe(1);
      const url = new URL(data.unsubscribeUrl as string);
      expect(`${url.origin}${url.pathname}`).toBe('https://notify.example.com/fw/unsubscribe');
      expect(checkLinkToken(url.searchParams.get('token')!, KEYS, NOW_MS / 1000, UNSUBSCRIBE)).toEqual({
        ok: true,
        claims: {
          userId: 'u1',
          purpose: 'unsubscribe',
          subject: `${category}/email`,
          expiresAt: NOW_MS / 1000 + 45 * 86_400,
        },
      });
    }
  });

  it('leaves security and ops emails, in-app messages and ops recipients as they are', () => {
    const data = { a: 1 };
    for (const category of ['security', 'ops'] as const) {
      expect(withUnsubscribeLink(ctx, { category, channel: 'email', userId: 'u1' }, data, NOW_MS)).toBe(data);
    }
    expect(
      withUnsubscribeLink(ctx, { category: 'service', channel: 'inapp', userId: 'u1' }, data, NOW_MS),
    ).toBe(data);
    expect(
      withUnsubscribeLink(ctx, { category: 'service', channel: 'email', userId: null }, data, NOW_MS),
    ).toBe(data);
  });
});

describe('kinds that carry the link', () => {
  it('every kind of those categories sent by email declares unsubscribeUrl (null in-app); no other kind does', () => {
    const carrying = messageKinds.filter(
      (k) => UNSUBSCRIBABLE_BY_EMAIL.has(k.category) && k.channels(config).includes('email'),
    );
    expect(carrying.length).toBeGreaterThan(0);
    for (const kind of messageKinds) {
      const shape = (
        templateKinds[kind.id as TemplateKind].schema as unknown as { shape: Record<string, unknown> }
      ).shape;
      expect('unsubscribeUrl' in shape, kind.id).toBe(carrying.includes(kind));
    }
    expect([...UNSUBSCRIBABLE_BY_EMAIL].every((c) => categories.includes(c))).toBe(true);
  });
});
