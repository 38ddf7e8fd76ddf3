// Signed links: what the platform verifies before a link acts on an account, and how the secret
// is rotated (key ids; old secrets that still verify; tokens from before key ids).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkLinkToken,
  linkKeyring,
  RESTOCK_STOP,
  RESTOCK_SUBSCRIBE,
  restockStopUrl,
  restockSubscribeUrl,
  signedUrl,
  signLinkToken,
  UNSUBSCRIBE,
  unsubscribeSubject,
  unsubscribeUrl,
  verifyLinkToken,
  type LinkClaims,
} from '../../lib/links.ts';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const NEXT = 'the-secret-that-replaced-it-0123456789abcdef';
const KEYS = linkKeyring(SECRET);
const NOW = 1_790_000_000;
const b64 = (text: string) => Buffer.from(text).toString('base64url');

/** A token as signed before key ids (the restock links of mails already sent). */
function legacyToken(claims: LinkClaims, secret: string): string {
  const parts = [b64(claims.userId), b64(claims.purpose)];
  if (claims.subject !== undefined) parts.push(b64(claims.subject));
  parts.push(String(claims.expiresAt));
  const payload = parts.join('.');
  return `${payload}.${createHmac('sha256', secret).update(payload).digest('base64url')}`;
}

describe('signed links', () => {
  const claims = { userId: 'u0000042', purpose: 'notification-preferences', expiresAt: NOW + 3_600 };

  it('verifies its own token and gives back the claims', () => {
    expect(verifyLinkToken(signLinkToken(claims, KEYS), KEYS, NOW)).toEqual(claims);
  });

  it('refuses a token signed with another secret, tampered with, or expired', () => {
    const token = signLinkToken(claims, KEYS);
    expect(verifyLinkToken(token, linkKeyring(`${SECRET}x`), NOW)).toBeNull();
    const [version, keyId, user, purpose, , signature] = token.split('.');
    const longer = [version, keyId, user, purpose, String(NOW + 999_999), signature].join('.');
    expect(verifyLinkToken(longer, KEYS, NOW)).toBeNull();
    const otherUser = signLinkToken({ ...claims, userId: 'u0000043' }, KEYS).split('.')[2];
    expect(
      verifyLinkToken(
        [version, keyId, otherUser, purpose, String(claims.expiresAt), signature].join('.'),
        KEYS,
        NOW,
      ),
    ).toBeNull();
    expect(verifyLinkToken(token, KEYS, claims.expiresAt + 1)).toBeNull();
    expect(verifyLinkToken('not-a-token', KEYS, NOW)).toBeNull();
  });

  it('adds the token to a URL, keeping its query', () => {
    const url = new URL(signedUrl('https://www.example.com/account/notifications?lang=zh', claims, KEYS));
    expect(url.searchParams.get('lang')).toBe('zh');
    expect(verifyLinkToken(url.searchParams.get('token')!, KEYS, NOW)).toEqual(claims);
  });
});

describe('key ids', () => {
  const claims = { userId: 'u1', purpose: RESTOCK_STOP, subject: 'p-1', expiresAt: NOW + 60 };

  it('name the signing key with an id derived from the secret, never the secret itself', () => {
    const token = signLinkToken(claims, KEYS);
    const [version, keyId] = token.split('.');
    expect(version).toBe('v2');
    expect(keyId).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(keyId).toBe(KEYS.signing.id);
    expect(linkKeyring(SECRET).signing.id).toBe(keyId);
    expect(linkKeyring(NEXT).signing.id).not.toBe(keyId);
    expect(token).not.toContain(SECRET);
    expect(token).not.toContain(b64(SECRET).slice(0, 8));
  });

  it('after a rotation, a token of the old key still verifies while its secret is listed as old', () => {
    const before = signLinkToken(claims, linkKeyring(SECRET));
    const rotated = linkKeyring(NEXT, [SECRET]);
    expect(checkLinkToken(before, rotated, NOW, RESTOCK_STOP)).toEqual({ ok: true, claims });
    // New tokens are signed with the new secret, under its own id.
    const after = signLinkToken(claims, rotated);
    expect(after.split('.')[1]).toBe(linkKeyring(NEXT).signing.id);
    expect(checkLinkToken(after, rotated, NOW, RESTOCK_STOP).ok).toBe(true);
    expect(checkLinkToken(after, linkKeyring(SECRET), NOW, RESTOCK_STOP)).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('refuses a token whose secret has since been removed (its key id is unknown)', () => {
    const before = signLinkToken(claims, linkKeyring(SECRET));
    expect(checkLinkToken(before, linkKeyring(NEXT), NOW, RESTOCK_STOP)).toEqual({
      ok: false,
      reason: 'forged',
    });
    const third = 'a-third-secret-after-two-rotations-0123456789';
    expect(checkLinkToken(before, linkKeyring(third, [NEXT]), NOW, RESTOCK_STOP)).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('refuses a token whose key id was swapped for another known one (the id is signed too)', () => {
    const rotated = linkKeyring(NEXT, [SECRET]);
    const parts = signLinkToken(claims, linkKeyring(SECRET)).split('.');
    parts[1] = rotated.signing.id;
    expect(checkLinkToken(parts.join('.'), rotated, NOW, RESTOCK_STOP)).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('keeps tokens from before key ids verifying, against the current secret and each old one', () => {
    const old = legacyToken(claims, SECRET);
    expect(old.split('.')).toHaveLength(5);
    expect(checkLinkToken(old, linkKeyring(SECRET), NOW, RESTOCK_STOP)).toEqual({ ok: true, claims });
    expect(checkLinkToken(old, linkKeyring(NEXT, [SECRET]), NOW, RESTOCK_STOP)).toEqual({ ok: true, claims });
    expect(checkLinkToken(old, linkKeyring(NEXT), NOW, RESTOCK_STOP)).toEqual({
      ok: false,
      reason: 'forged',
    });
    const plain = legacyToken(
      { userId: 'u1', purpose: 'notification-preferences', expiresAt: NOW + 60 },
      SECRET,
    );
    expect(verifyLinkToken(plain, KEYS, NOW)).toEqual({
      userId: 'u1',
      purpose: 'notification-preferences',
      expiresAt: NOW + 60,
    });
    // Their refusals are the same as for keyed tokens.
    expect(checkLinkToken(old, KEYS, NOW, RESTOCK_SUBSCRIBE)).toEqual({ ok: false, reason: 'wrong-purpose' });
    expect(checkLinkToken(old, KEYS, NOW + 61, RESTOCK_STOP)).toEqual({ ok: false, reason: 'expired' });
  });

  it('treats an old secret equal to the current one as the current one', () => {
    const keys = linkKeyring(SECRET, [SECRET, NEXT]);
    expect([...keys.verifying.keys()]).toEqual([
      linkKeyring(SECRET).signing.id,
      linkKeyring(NEXT).signing.id,
    ]);
  });
});

describe('signed links with a subject, checked for one purpose', () => {
  const claims = {
    userId: 'u0000042',
    purpose: 'restock-subscribe',
    subject: 'p-gift-100',
    expiresAt: NOW + 3_600,
  };
  const token = signLinkToken(claims, KEYS);

  it('gives back the claims, subject included, for its own purpose', () => {
    expect(checkLinkToken(token, KEYS, NOW, 'restock-subscribe')).toEqual({ ok: true, claims });
    expect(verifyLinkToken(token, KEYS, NOW)).toEqual(claims);
  });

  it('keeps tokens without a subject working, and never reads one form as the other', () => {
    const plain = signLinkToken(
      { userId: 'u1', purpose: 'notification-preferences', expiresAt: NOW + 60 },
      KEYS,
    );
    expect(plain.split('.')).toHaveLength(6);
    expect(checkLinkToken(plain, KEYS, NOW, 'notification-preferences')).toEqual({
      ok: true,
      claims: { userId: 'u1', purpose: 'notification-preferences', expiresAt: NOW + 60 },
    });
    // Dropping the subject part (or adding one) breaks the signature.
    const [version, keyId, user, purpose, , expires, signature] = token.split('.');
    expect(
      checkLinkToken(
        [version, keyId, user, purpose, expires, signature].join('.'),
        KEYS,
        NOW,
        'restock-subscribe',
      ),
    ).toEqual({ ok: false, reason: 'forged' });
    // Nor does a keyed token read as one from before key ids once its head is cut off.
    expect(checkLinkToken(token.split('.').slice(2).join('.'), KEYS, NOW, 'restock-subscribe')).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('refuses a token signed for another purpose', () => {
    expect(checkLinkToken(token, KEYS, NOW, 'restock-stop')).toEqual({ ok: false, reason: 'wrong-purpose' });
  });

  it('refuses a forged token and any altered part', () => {
    expect(checkLinkToken(token, linkKeyring(`${SECRET}x`), NOW, 'restock-subscribe')).toEqual({
      ok: false,
      reason: 'forged',
    });
    const parts = token.split('.');
    const alter = (index: number, value: string) =>
      parts.map((part, i) => (i === index ? value : part)).join('.');
    for (const altered of [
      alter(1, 'AAAAAAAA'),
      alter(2, b64('u0000043')),
      alter(3, b64('restock-stop')),
      alter(4, b64('p-gift-500')),
      alter(5, String(NOW + 999_999)),
      alter(6, `${parts[6]!.slice(0, -1)}${parts[6]!.endsWith('A') ? 'B' : 'A'}`),
    ]) {
      expect(checkLinkToken(altered, KEYS, NOW, 'restock-subscribe'), altered).toEqual({
        ok: false,
        reason: 'forged',
      });
    }
  });

  it('refuses an expired token, and accepts it up to its last second', () => {
    expect(checkLinkToken(token, KEYS, claims.expiresAt, 'restock-subscribe').ok).toBe(true);
    expect(checkLinkToken(token, KEYS, claims.expiresAt + 1, 'restock-subscribe')).toEqual({
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
      'v2..a.b.123.sig',
      `v3.${token.split('.').slice(1).join('.')}`,
      `${token}.x`,
      token.replace(/\.\d+\./, '.soon.'),
      'a b.c.123.sig',
      'a.b.123.',
    ]) {
      expect(checkLinkToken(bad, KEYS, NOW, 'restock-subscribe'), String(bad)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    }
  });

  it('refuses to sign an expiry that is not whole epoch seconds', () => {
    expect(() => signLinkToken({ ...claims, expiresAt: NOW + 0.5 }, KEYS)).toThrow(
      /expiresAt: expected epoch seconds/,
    );
  });
});

describe('restock links', () => {
  const options = { keys: KEYS, userId: 'u7', productId: 'gift/100 & more', expiresAt: NOW + 86_400 };

  it('point at the HTTP role under the public URL, keeping its path, with a token for their purpose', () => {
    for (const publicUrl of ['https://shop.example.com/forewarn', 'https://shop.example.com/forewarn/']) {
      const subscribe = new URL(restockSubscribeUrl({ ...options, publicUrl }));
      expect(`${subscribe.origin}${subscribe.pathname}`).toBe(
        'https://shop.example.com/forewarn/restock/subscribe',
      );
      expect(checkLinkToken(subscribe.searchParams.get('token')!, KEYS, NOW, RESTOCK_SUBSCRIBE)).toEqual({
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
      expect(checkLinkToken(stopToken, KEYS, NOW, RESTOCK_STOP).ok).toBe(true);
      expect(checkLinkToken(stopToken, KEYS, NOW, RESTOCK_SUBSCRIBE)).toEqual({
        ok: false,
        reason: 'wrong-purpose',
      });
    }
  });
});

describe('unsubscribe links', () => {
  it('point at /unsubscribe under the public URL, naming the user, the category and the channel', () => {
    const url = new URL(
      unsubscribeUrl({
        publicUrl: 'https://notify.example.com/fw',
        keys: KEYS,
        userId: 'u9',
        category: 'promotional',
        channel: 'email',
        expiresAt: NOW + 60,
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe('https://notify.example.com/fw/unsubscribe');
    const check = checkLinkToken(url.searchParams.get('token')!, KEYS, NOW, UNSUBSCRIBE);
    expect(check).toEqual({
      ok: true,
      claims: { userId: 'u9', purpose: 'unsubscribe', subject: 'promotional/email', expiresAt: NOW + 60 },
    });
    expect(unsubscribeSubject(check.ok ? check.claims.subject : undefined)).toEqual({
      category: 'promotional',
      channel: 'email',
    });
  });

  it('read no category and channel from a subject that does not name both', () => {
    for (const subject of [undefined, '', 'promotional', 'promotional/', '/email', 'a/b/c', 'Promo/email']) {
      expect(unsubscribeSubject(subject), String(subject)).toBeNull();
    }
  });
});
