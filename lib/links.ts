// Signed links: a link in a message that acts on an account (notification settings, later
// restock and security actions) carries an HMAC-SHA256 token over who, what and until when, so
// the platform can verify it before acting. The secret comes from FOREWARN_LINK_SECRET.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkClaims {
  /** The user the link acts for. */
  userId: string;
  /** What it may do, e.g. "notification-preferences". */
  purpose: string;
  /** Epoch seconds after which it no longer works. */
  expiresAt: number;
}

/** `userId.purpose.expiresAt.signature`, each part base64url, safe in a query string. */
export function signLinkToken(claims: LinkClaims, secret: string): string {
  const payload = [b64(claims.userId), b64(claims.purpose), String(claims.expiresAt)].join('.');
  return `${payload}.${mac(payload, secret)}`;
}

/** The claims of a valid, unexpired token; null for anything else. */
export function verifyLinkToken(token: string, secret: string, nowSeconds: number): LinkClaims | null {
  const parts = token.split('.');
  if (parts.length !== 4) return null;
  const [user, purpose, expires, signature] = parts as [string, string, string, string];
  const expected = Buffer.from(mac(`${user}.${purpose}.${expires}`, secret));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const expiresAt = Number(expires);
  if (!Number.isSafeInteger(expiresAt) || expiresAt < nowSeconds) return null;
  return { userId: unb64(user), purpose: unb64(purpose), expiresAt };
}

/** Adds `token=<signed token>` to a URL. */
export function signedUrl(base: string, claims: LinkClaims, secret: string): string {
  const url = new URL(base);
  url.searchParams.set('token', signLinkToken(claims, secret));
  return url.toString();
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const unb64 = (text: string) => Buffer.from(text, 'base64url').toString('utf8');
