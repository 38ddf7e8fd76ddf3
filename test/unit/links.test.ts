// Signed links: what the platform verifies before a link acts on an account.
import { describe, expect, it } from 'vitest';
import { signedUrl, signLinkToken, verifyLinkToken } from '../../lib/links.ts';

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
