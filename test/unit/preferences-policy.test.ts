// The pure parts of preferences: the policy's reason to withhold a message (opted out,
// suppressed; ops alerts and security in-app are never withheld by preferences), the preferences
// API's view (every category on every channel, defaults opted in), its body check (the field that
// is wrong, all or none) and its bearer comparison.
import { describe, expect, it } from 'vitest';
import { parsePreferencesBody, preferenceViews } from '../../lib/http/routes/preferences.ts';
import { withheldReason } from '../../lib/notifications/policy.ts';
import { canOptOut } from '../../lib/policy/preferences.ts';

const SINCE = new Date('2026-12-01T09:30:00Z');
const userEmail = {
  userId: 'u-1',
  category: 'promotional',
  channel: 'email',
  address: 'a@example.com',
} as const;
const none = { optedOut: false, suppression: null };

describe('withheldReason', () => {
  it('lets a message go when nothing is found', () => {
    expect(withheldReason(userEmail, none)).toBeNull();
  });

  it('withholds a message its user opted out of, naming the category and channel', () => {
    expect(withheldReason(userEmail, { optedOut: true, suppression: null })).toBe(
      'opted out: promotional by email',
    );
  });

  it('withholds a message to a suppressed address with the reason and since when', () => {
    expect(
      withheldReason(userEmail, {
        optedOut: false,
        suppression: { reason: '550 no such user', since: SINCE },
      }),
    ).toBe('suppressed: 550 no such user (since 2026-12-01T09:30:00.000Z)');
  });

  it('never withholds a security message in-app by preferences', () => {
    const inapp = { userId: 'u-1', category: 'security', channel: 'inapp', address: null } as const;
    expect(withheldReason(inapp, { optedOut: true, suppression: null })).toBeNull();
    // By email the user may switch it off.
    expect(
      withheldReason(
        { ...inapp, channel: 'email', address: 'a@example.com' },
        { optedOut: true, suppression: null },
      ),
    ).toBe('opted out: security by email');
  });

  it('applies no preferences to ops alerts, and suppression still', () => {
    const ops = { userId: null, category: 'ops', channel: 'email', address: 'ops@example.com' } as const;
    expect(withheldReason(ops, { optedOut: true, suppression: null })).toBeNull();
    expect(withheldReason(ops, { optedOut: true, suppression: { reason: 'bounced', since: SINCE } })).toBe(
      'suppressed: bounced (since 2026-12-01T09:30:00.000Z)',
    );
  });
});

describe('canOptOut', () => {
  it('refuses only security in-app', () => {
    expect(canOptOut('security', 'inapp')).toBe(false);
    expect(canOptOut('security', 'email')).toBe(true);
    expect(canOptOut('promotional', 'inapp')).toBe(true);
  });
});

describe('preferenceViews', () => {
  it('lists every category on every channel, opted in unless stored otherwise', () => {
    const views = preferenceViews(
      [
        { userId: 'u-1', category: 'promotional', channel: 'email', optedOut: true },
        { userId: 'u-1', category: 'service', channel: 'inapp', optedOut: false },
      ],
      ['email', 'inapp'],
    );
    expect(views).toHaveLength(10);
    expect(views.filter((v) => v.optedOut)).toEqual([
      { category: 'promotional', channel: 'email', optedOut: true, canOptOut: true },
    ]);
    expect(views.filter((v) => !v.canOptOut)).toEqual([
      { category: 'security', channel: 'inapp', optedOut: false, canOptOut: false },
    ]);
  });
});

describe('parsePreferencesBody', () => {
  const channels = ['email', 'inapp'];
  const parse = (body: unknown) => parsePreferencesBody(body, channels);

  it('takes known categories and channels', () => {
    expect(parse({ preferences: [{ category: 'promotional', channel: 'email', optedOut: true }] })).toEqual({
      ok: true,
      changes: [{ category: 'promotional', channel: 'email', optedOut: true }],
    });
  });

  it.each([
    [undefined, 'body', /expected a JSON object/],
    [[], 'body', /expected object/],
    [{}, 'preferences', /expected an array/],
    [{ preferences: [] }, 'preferences', /at least one/],
    [
      { preferences: [{ category: 'weather', channel: 'email', optedOut: true }] },
      'preferences[0].category',
      /expected one of service, requested, promotional, security, ops/,
    ],
    [
      { preferences: [{ category: 'service', channel: 'sms', optedOut: true }] },
      'preferences[0].channel',
      /expected one of email, inapp/,
    ],
    [
      { preferences: [{ category: 'service', channel: 'email', optedOut: 'yes' }] },
      'preferences[0].optedOut',
      /expected true or false/,
    ],
    [
      { preferences: [{ category: 'service', channel: 'email', optedOut: true, extra: 1 }] },
      'preferences[0]',
      /unexpected field\(s\) "extra"/,
    ],
    [
      { preferences: [{ category: 'service', channel: 'email', optedOut: true }], more: 1 },
      'body',
      /unexpected field\(s\) "more"/,
    ],
  ])('refuses %j, naming %s', (body, field, message) => {
    const result = parse(body);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.field).toBe(field);
    expect(result.message).toMatch(message);
  });

  it('refuses switching security off in-app, the whole body with it', () => {
    const result = parse({
      preferences: [
        { category: 'promotional', channel: 'email', optedOut: true },
        { category: 'security', channel: 'inapp', optedOut: true },
      ],
    });
    expect(result).toEqual({
      ok: false,
      field: 'preferences[1]',
      message: 'security messages cannot be switched off on inapp: expected optedOut false',
    });
    // Switching it on (as it always is) is fine.
    expect(parse({ preferences: [{ category: 'security', channel: 'inapp', optedOut: false }] }).ok).toBe(
      true,
    );
  });

  it('refuses a pair given twice', () => {
    const entry = { category: 'service', channel: 'email', optedOut: true };
    expect(parse({ preferences: [entry, { ...entry, optedOut: false }] })).toMatchObject({
      ok: false,
      field: 'preferences[1]',
    });
  });
});
