// The restock alert's pure parts: the merge of two keyset pages, the order both sources share,
// who a sign-up places in a wave, the cursor, and the payload check at the boundary.
import { describe, expect, it } from 'vitest';
import {
  compareSignups,
  compareUtf8,
  decodeCursor,
  encodeCursor,
  judgeSignup,
  mergeSignupPages,
  restockPayloadOf,
  signedLinks,
  type SignupFacts,
  type SignupRow,
} from '../../lib/messages/inventory-restock.ts';
import { linkKeyring, signedUrl } from '../../lib/links.ts';
import type { CauseEvent } from '../../lib/messages/kind.ts';

const t = (second: number, micros = 0) =>
  `2026-11-01T00:00:${String(second).padStart(2, '0')}.${String(micros).padStart(6, '0')}Z`;
const BOTH = ['email', 'inapp'] as const;

const activeUser = (
  userId: string,
  subscribedAt: string | null,
  email: string | null = `${userId}@example.com`,
) => ({
  userId,
  user: { email, locale: 'en', timezone: 'Asia/Shanghai', status: 'active' },
  subscribedAt,
});

describe('mergeSignupPages', () => {
  it('keeps only what both pages know completely: up to the last key of a page that was full', () => {
    const platform = [
      { userId: 'a', at: t(1) },
      { userId: 'b', at: t(3) },
      { userId: 'c', at: t(5) },
    ];
    const forewarn = [
      { userId: 'x', at: t(2) },
      { userId: 'y', at: t(6) },
    ];
    const merged = mergeSignupPages(platform, forewarn, 3);
    // The platform's page is full at t(5): its next page may hold t(5.5), before forewarn's t(6).
    expect(merged.rows.map((r) => r.userId)).toEqual(['a', 'x', 'b', 'c']);
    expect(merged.exhausted).toBe(false);
    expect(merged.bound).toEqual({ userId: 'c', at: t(5) });
  });

  it('takes the smaller bound when both pages are full, and everything when neither is', () => {
    const platform = [
      { userId: 'a', at: t(1) },
      { userId: 'b', at: t(4) },
    ];
    const forewarn = [
      { userId: 'x', at: t(2) },
      { userId: 'y', at: t(3) },
    ];
    expect(mergeSignupPages(platform, forewarn, 2).rows.map((r) => r.userId)).toEqual(['a', 'x', 'y']);
    const all = mergeSignupPages(platform, forewarn, 3);
    expect(all.rows.map((r) => r.userId)).toEqual(['a', 'x', 'y', 'b']);
    expect(all.exhausted).toBe(true);
  });

  it('orders by time to the microsecond, then user id byte-wise, then the platform first', () => {
    const rows: SignupRow[] = [
      { userId: 'b', at: t(1, 2), source: 'platform' },
      { userId: 'a', at: t(1, 2), source: 'forewarn' },
      { userId: 'a', at: t(1, 2), source: 'platform' },
      { userId: 'z', at: t(1, 1), source: 'forewarn' },
      // U+FF21 (FULLWIDTH A) is EF BC A1 in UTF-8 and U+1F600 is F0 9F 98 80: byte order puts the
      // emoji last, as COLLATE "C" does; UTF-16 order (JS <) would put it first.
      { userId: '\u{1F600}', at: t(9), source: 'platform' },
      { userId: '\uFF21', at: t(9), source: 'platform' },
    ];
    expect(rows.sort(compareSignups).map((r) => `${r.userId}/${r.source}`)).toEqual([
      'z/forewarn',
      'a/platform',
      'a/forewarn',
      'b/platform',
      '\uFF21/platform',
      '\u{1F600}/platform',
    ]);
  });
});

describe('judgeSignup', () => {
  const row = (userId: string, at: string, source: SignupRow['source'] = 'platform'): SignupRow => ({
    userId,
    at,
    source,
  });
  const facts = (over: Partial<SignupFacts> & Pick<SignupFacts, 'subscriber'>): SignupFacts => ({
    requestedAt: null,
    optedOutAt: null,
    alert: undefined,
    ...over,
  });

  it('places an active subscriber with their address, locale, time zone and sign-up', () => {
    const verdict = judgeSignup(row('u1', t(1)), facts({ subscriber: activeUser('u1', t(1)) }), BOTH);
    expect(verdict).toEqual({
      recipient: {
        userId: 'u1',
        address: 'u1@example.com',
        locale: 'en',
        timezone: 'Asia/Shanghai',
        signedUpAt: t(1),
        source: 'platform',
      },
    });
  });

  it('counts a user in both sources once, at the earlier sign-up', () => {
    const both = facts({ subscriber: activeUser('u1', t(5)), requestedAt: t(2) });
    expect(judgeSignup(row('u1', t(2), 'forewarn'), both, BOTH)).toHaveProperty('recipient');
    expect(judgeSignup(row('u1', t(5), 'platform'), both, BOTH)).toEqual({ skip: 'duplicate' });
    // The same instant in both: the platform's counts.
    const tie = facts({ subscriber: activeUser('u1', t(3)), requestedAt: t(3) });
    expect(judgeSignup(row('u1', t(3), 'platform'), tie, BOTH)).toHaveProperty('recipient');
    expect(judgeSignup(row('u1', t(3), 'forewarn'), tie, BOTH)).toEqual({ skip: 'duplicate' });
  });

  it('alerts a subscription once: only a sign-up after the last alert places the user again', () => {
    const alert = { lastAlertedAt: t(10), thisCause: false };
    const old = facts({ subscriber: activeUser('u1', t(1)), alert });
    expect(judgeSignup(row('u1', t(1)), old, BOTH)).toEqual({ skip: 'alerted' });
    // Subscribed on the platform long ago and asked again through forewarn after the alert: the
    // new request counts, the old subscription does not.
    const again = facts({ subscriber: activeUser('u1', t(1)), requestedAt: t(11), alert });
    expect(judgeSignup(row('u1', t(1)), again, BOTH)).toEqual({ skip: 'duplicate' });
    expect(judgeSignup(row('u1', t(11), 'forewarn'), again, BOTH)).toHaveProperty('recipient');
    // Alerted by this cause (an earlier wave), whatever the sign-ups say.
    const thisCause = facts({
      subscriber: activeUser('u1', t(11)),
      alert: { lastAlertedAt: t(10), thisCause: true },
    });
    expect(judgeSignup(row('u1', t(11)), thisCause, BOTH)).toEqual({ skip: 'alerted' });
  });

  it('counts a sign-up made after the user stopped alerts for the product: they asked again', () => {
    const stopped = facts({ subscriber: activeUser('u1', t(1)), requestedAt: t(8), optedOutAt: t(5) });
    expect(judgeSignup(row('u1', t(1)), stopped, BOTH)).toEqual({ skip: 'duplicate' });
    expect(judgeSignup(row('u1', t(8), 'forewarn'), stopped, BOTH)).toHaveProperty(
      'recipient.signedUpAt',
      t(8),
    );
    const resubscribed = facts({ subscriber: activeUser('u1', t(6)), optedOutAt: t(5) });
    expect(judgeSignup(row('u1', t(6)), resubscribed, BOTH)).toHaveProperty('recipient');
  });

  it('gives no place to opted-out, inactive, unknown users, or users nothing can be sent to', () => {
    expect(
      judgeSignup(row('u1', t(1)), facts({ subscriber: activeUser('u1', t(1)), optedOutAt: t(5) }), BOTH),
    ).toEqual({ skip: 'opted-out' });
    const disabled = activeUser('u1', t(1));
    disabled.user.status = 'disabled';
    expect(judgeSignup(row('u1', t(1)), facts({ subscriber: disabled }), BOTH)).toEqual({ skip: 'inactive' });
    const odd = activeUser('u1', t(1));
    odd.user.status = 'suspended';
    expect(judgeSignup(row('u1', t(1)), facts({ subscriber: odd }), BOTH)).toEqual({
      skip: 'invalid-status',
    });
    const ghost = { userId: 'u1', user: null, subscribedAt: null };
    expect(
      judgeSignup(row('u1', t(1), 'forewarn'), facts({ subscriber: ghost, requestedAt: t(1) }), BOTH),
    ).toEqual({
      skip: 'unknown-user',
    });
    const noEmail = facts({ subscriber: activeUser('u1', t(1), null) });
    expect(judgeSignup(row('u1', t(1)), noEmail, ['email'])).toEqual({ skip: 'no-channel' });
    expect(judgeSignup(row('u1', t(1)), noEmail, BOTH)).toHaveProperty('recipient.address', null);
  });
});

describe('cursor', () => {
  it('round-trips a key whose user id holds the separator, and refuses a malformed one clearly', () => {
    const key = { at: t(7, 123456), userId: 'odd|id' };
    expect(decodeCursor(encodeCursor(key))).toEqual(key);
    expect(decodeCursor(null)).toBeNull();
    expect(() => decodeCursor('2026-11-01|u1')).toThrow(
      /restock-alert: audience cursor "2026-11-01\|u1": expected/,
    );
    expect(() => decodeCursor(`${t(1)}|`)).toThrow(/expected/);
  });
});

describe('restockPayloadOf', () => {
  const event = (payload: Record<string, unknown>): CauseEvent => ({
    eventId: '7',
    causeId: '3',
    type: 'opened',
    seq: 0,
    payload: payload as unknown as CauseEvent['payload'],
  });
  const good = {
    incidentId: '3',
    detector: 'inventory',
    subjectKey: 'p1',
    subject: { productId: 'p1' },
    kind: 'restock',
    type: 'opened',
    at: 1_700_000_000_000,
    evidence: {},
    productId: 'p1',
    productName: 'Card',
    stock: 80,
    pendingUnits: 0,
    available: 80,
    capacity: 80,
    wave: 1,
    restockedAt: 1_700_000_000_000,
  };

  it('reads a restock event, and ignores the other causes of the inventory detector', () => {
    expect(restockPayloadOf(event(good))).toMatchObject({ productId: 'p1', capacity: 80, wave: 1 });
    expect(restockPayloadOf(event({ ...good, kind: 'low-stock' }))).toBeNull();
    expect(restockPayloadOf(event({ ...good, detector: 'payment-health' }))).toBeNull();
  });

  it('refuses a restock event without its wave size, naming the event and the field', () => {
    const { capacity: _capacity, ...missing } = good;
    expect(() => restockPayloadOf(event(missing))).toThrow(
      /restock-alert: cause event 7 \(cause 3, opened\) is not a restock event .*payload\.capacity/,
    );
  });
});

describe('signedLinks', () => {
  it('makes the very URL signedUrl makes, for bases with and without a query, a token already, or a fragment', () => {
    const claims = { userId: 'u 1/é', purpose: 'restock-stop', expiresAt: 2_000_000_000 };
    for (const base of [
      'https://shop.example.com/account/notifications',
      'https://shop.example.com/notifications?',
      'https://fw.example.com/restock/stop?product=p%2F1',
      'https://fw.example.com/restock/stop?a=b c&token=old&z=1',
      'https://shop.example.com/prefs#settings',
      'http://127.0.0.1:8787',
    ]) {
      const keys = linkKeyring('k');
      expect(signedLinks(base)(claims, keys)).toBe(signedUrl(base, claims, keys));
    }
  });
});

describe('compareUtf8', () => {
  it('orders as UTF-8 bytes do (COLLATE "C"), for random strings across the planes', () => {
    const alphabet = [
      'a',
      'Z',
      '0',
      '|',
      'é',
      '\u00ff',
      '\u4e2d',
      '\ud7ff',
      '\ue000',
      '\uff21',
      '\uffff',
      '\u{10000}',
      '\u{1F600}',
      '\u{10FFFF}',
    ];
    let seed = 7;
    const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
    const word = () =>
      Array.from(
        { length: Math.floor(random() * 4) },
        () => alphabet[Math.floor(random() * alphabet.length)],
      ).join('');
    for (let i = 0; i < 5_000; i++) {
      const a = word();
      const b = word();
      expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
  });
});
