// Signed links: what the platform verifies before a link acts on an account.
import { describe, expect, it } from 'vitest';
import {
  checkLinkToken,
  RESTOCK_STOP,
  RESTOCK_SUBSCRIBE,
  restockStopUrl,
  restockSubscribeUrl,
  signedUrl,
  signLinkToken,
  verifyLinkToken,
} from '../../lib/links.ts';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const NOW = 1_790_000_000;

describe('signed links', () => {
  const claims = { userId: 'u0000042', purpose: 'notification-preferences', expiresAt: NOW + 3_600 };

  it('verifies its own token and gives back the claims', () => {
    expect(verifyLinkToken(signLinkToken(claims, SECRET), SECRET, NOW)).toEqual(claims);
  });

  it('refuses a token signed with another secret, tampered with, or expired', () => {
    const token = signLinkToken(claims, SECRET);
    expect(verifyLinkToken(token, `${SECRET}x`, NOW)).toBeNull();
    const [user, purpose, , signature] = token.split('.');
    const longer = [user, purpose, String(NOW + 999_999), signature].join('.');
    expect(verifyLinkToken(longer, SECRET, NOW)).toBeNull();
    const otherUser = signLinkToken({ ...claims, userId: 'u0000043' }, SECRET).split('.')[0];
    expect(
      verifyLinkToken([otherUser, purpose, String(claims.expiresAt), signature].join('.'), SECRET, NOW),
    ).toBeNull();
    expect(verifyLinkToken(token, SECRET, claims.expiresAt + 1)).toBeNull();
    expect(verifyLinkToken('not-a-token', SECRET, NOW)).toBeNull();
  });

  it('adds the token to a URL, keeping its query', () => {
    const url = new URL(signedUrl('https://www.example.com/account/notifications?lang=zh', claims, SECRET));
    expect(url.searchParams.get('lang')).toBe('zh');
    expect(verifyLinkToken(url.searchParams.get('token')!, SECRET, NOW)).toEqual(claims);
  });
});

describe('signed links with a subject, checked for one purpose', () => {
  const claims = {
    userId: 'u0000042',
    purpose: 'restock-subscribe',
    subject: 'p-gift-100',
    expiresAt: NOW + 3_600,
  };
  const token = signLinkToken(claims, SECRET);

  it('gives back the claims, subject included, for its own purpose', () => {
    expect(checkLinkToken(token, SECRET, NOW, 'restock-subscribe')).toEqual({ ok: true, claims });
    expect(verifyLinkToken(token, SECRET, NOW)).toEqual(claims);
  });

  it('keeps tokens without a subject working, and never reads one form as the other', () => {
    const plain = signLinkToken(
      { userId: 'u1', purpose: 'notification-preferences', expiresAt: NOW + 60 },
      SECRET,
    );
    expect(plain.split('.')).toHaveLength(4);
    expect(checkLinkToken(plain, SECRET, NOW, 'notification-preferences')).toEqual({
      ok: true,
      claims: { userId: 'u1', purpose: 'notification-preferences', expiresAt: NOW + 60 },
    });
    // Dropping the subject part (or adding one) breaks the signature.
    const [user, purpose, , expires, signature] = token.split('.');
    expect(
      checkLinkToken([user, purpose, expires, signature].join('.'), SECRET, NOW, 'restock-subscribe'),
    ).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('refuses a token signed for another purpose', () => {
    expect(checkLinkToken(token, SECRET, NOW, 'restock-stop')).toEqual({
      ok: false,
      reason: 'wrong-purpose',
    });
  });

  it('refuses a forged token and any altered part', () => {
    expect(checkLinkToken(token, `${SECRET}x`, NOW, 'restock-subscribe')).toEqual({
      ok: false,
      reason: 'forged',
    });
    const parts = token.split('.');
    const alter = (index: number, value: string) =>
      parts.map((part, i) => (i === index ? value : part)).join('.');
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    for (const altered of [
      alter(0, b64('u0000043')),
      alter(1, b64('restock-stop')),
      alter(2, b64('p-gift-500')),
      alter(3, String(NOW + 999_999)),
      alter(4, `${parts[4]!.slice(0, -1)}${parts[4]!.endsWith('A') ? 'B' : 'A'}`),
    ]) {
      expect(checkLinkToken(altered, SECRET, NOW, 'restock-subscribe'), altered).toEqual({
        ok: false,
        reason: 'forged',
      });
    }
  });

  it('refuses an expired token, and accepts it up to its last second', () => {
    expect(checkLinkToken(token, SECRET, claims.expiresAt, 'restock-subscribe').ok).toBe(true);
    expect(checkLinkToken(token, SECRET, claims.expiresAt + 1, 'restock-subscribe')).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('calls anything that is not a token malformed', () => {
    for (const bad of [
      undefined,
      '',
      'not-a-token',
      'a.b.c',
      'a.b.c.d.e.f',
      `${token}.x`,
      token.replace(/\.\d+\./, '.soon.'),
      'a b.c.123.sig',
      'a.b.123.',
    ]) {
      expect(checkLinkToken(bad, SECRET, NOW, 'restock-subscribe'), String(bad)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    }
  });

  it('refuses to sign an expiry that is not whole epoch seconds', () => {
    expect(() => signLinkToken({ ...claims, expiresAt: NOW + 0.5 }, SECRET)).toThrow(
      /expiresAt: expected epoch seconds/,
    );
  });
});

describe('restock links', () => {
  const options = { secret: SECRET, userId: 'u7', productId: 'gift/100 & more', expiresAt: NOW + 86_400 };

  it('point at the HTTP role under the public URL, keeping its path, with a token for their purpose', () => {
    for (const publicUrl of ['https://shop.example.com/forewarn', 'https://shop.example.com/forewarn/']) {
      const subscribe = new URL(restockSubscribeUrl({ ...options, publicUrl }));
      expect(`${subscribe.origin}${subscribe.pathname}`).toBe(
        'https://shop.example.com/forewarn/restock/subscribe',
      );
      expect(checkLinkToken(subscribe.searchParams.get('token')!, SECRET, NOW, RESTOCK_SUBSCRIBE)).toEqual({
        ok: true,
        claims: {
          userId: 'u7',
          purpose: 'restock-subscribe',
          subject: 'gift/100 & more',
          expiresAt: NOW + 86_400,
        },
      });
      const stop = new URL(restockStopUrl({ ...options, publicUrl }));
      expect(stop.pathname).toBe('/forewarn/restock/stop');
      const stopToken = stop.searchParams.get('token')!;
      expect(checkLinkToken(stopToken, SECRET, NOW, RESTOCK_STOP).ok).toBe(true);
      expect(checkLinkToken(stopToken, SECRET, NOW, RESTOCK_SUBSCRIBE)).toEqual({
        ok: false,
        reason: 'wrong-purpose',
      });
    }
  });
});
