// Signed links: a link in a message that acts on an account (notification settings, restock
// reminders and opt-outs, later security actions) carries an HMAC-SHA256 token over who, what,
// about which subject and until when, so that whoever serves the link (the platform, or
// forewarn's HTTP role) can verify it before acting. The secret comes from FOREWARN_LINK_SECRET.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkClaims {
  /** The user the link acts for. */
  userId: string;
  /** What it may do, e.g. "notification-preferences". */
  purpose: string;
  /** What it acts on, when the purpose needs one (a restock link: the product id). */
  subject?: string;
  /** Epoch seconds after which it no longer works. */
  expiresAt: number;
}

/**
 * Why a token was refused. `malformed`: not a token at all (missing, truncated, wrong number of
 * parts, a non-numeric expiry); `forged`: its signature does not match (another secret, or any
 * part altered); `wrong-purpose`: genuine, but signed for something else; `expired`: genuine,
 * but past its expiry.
 */
export type LinkRefusal = 'malformed' | 'forged' | 'wrong-purpose' | 'expired';

export type LinkCheck = { ok: true; claims: LinkClaims } | { ok: false; reason: LinkRefusal };

/**
 * `userId.purpose.expiresAt.signature`, or `userId.purpose.subject.expiresAt.signature` with a
 * subject; each part base64url (no dots), so the two forms never read as each other, and the
 * signature covers every part before it.
 */
export function signLinkToken(claims: LinkClaims, secret: string): string {
  if (!Number.isSafeInteger(claims.expiresAt) || claims.expiresAt < 0) {
    throw new RangeError(`signLinkToken: expiresAt: expected epoch seconds, got ${claims.expiresAt}`);
  }
  const parts = [b64(claims.userId), b64(claims.purpose)];
  if (claims.subject !== undefined) parts.push(b64(claims.subject));
  parts.push(String(claims.expiresAt));
  const payload = parts.join('.');
  return `${payload}.${mac(payload, secret)}`;
}

/**
 * Checks a token for one purpose: its claims when it is well formed, signed with `secret`, for
 * `purpose` and unexpired at `nowSeconds`; otherwise the first reason it fails, in that order.
 */
export function checkLinkToken(
  token: string | undefined,
  secret: string,
  nowSeconds: number,
  purpose: string,
): LinkCheck {
  const parsed = parseToken(token);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const expected = Buffer.from(mac(parsed.payload, secret));
  const given = Buffer.from(parsed.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'forged' };
  }
  if (parsed.claims.purpose !== purpose) return { ok: false, reason: 'wrong-purpose' };
  if (parsed.claims.expiresAt < nowSeconds) return { ok: false, reason: 'expired' };
  return { ok: true, claims: parsed.claims };
}

/** The claims of a valid, unexpired token, whatever its purpose; null for anything else. */
export function verifyLinkToken(token: string, secret: string, nowSeconds: number): LinkClaims | null {
  const parsed = parseToken(token);
  if (!parsed) return null;
  const result = checkLinkToken(token, secret, nowSeconds, parsed.claims.purpose);
  return result.ok ? result.claims : null;
}

/** Adds `token=<signed token>` to a URL. */
export function signedUrl(base: string, claims: LinkClaims, secret: string): string {
  const url = new URL(base);
  url.searchParams.set('token', signLinkToken(claims, secret));
  return url.toString();
}

/** Asks for a reminder when the product is back (offered with a low-stock notice). */
export const RESTOCK_SUBSCRIBE = 'restock-subscribe';
/** Stops restock alerts for the product (offered with a restock alert). */
export const RESTOCK_STOP = 'restock-stop';

/** What a restock link is built from. */
export interface RestockLinkOptions {
  /** Where forewarn's HTTP role is reached from the outside (FOREWARN_PUBLIC_URL), path prefix kept. */
  publicUrl: string;
  secret: string;
  userId: string;
  productId: string;
  /** Epoch seconds after which the link no longer works. */
  expiresAt: number;
}

/** `<public URL>/restock/subscribe?token=…`: the user asks to be told when the product is back. */
export function restockSubscribeUrl(options: RestockLinkOptions): string {
  return restockUrl('restock/subscribe', RESTOCK_SUBSCRIBE, options);
}

/** `<public URL>/restock/stop?token=…`: the user stops restock alerts for the product. */
export function restockStopUrl(options: RestockLinkOptions): string {
  return restockUrl('restock/stop', RESTOCK_STOP, options);
}

function restockUrl(path: string, purpose: string, options: RestockLinkOptions): string {
  // A base with a path ("https://shop.example.com/forewarn") keeps it: resolve against "…/".
  const base = options.publicUrl.endsWith('/') ? options.publicUrl : `${options.publicUrl}/`;
  return signedUrl(
    new URL(path, base).toString(),
    { userId: options.userId, purpose, subject: options.productId, expiresAt: options.expiresAt },
    options.secret,
  );
}

interface ParsedToken {
  payload: string;
  signature: string;
  claims: LinkClaims;
}

const PART = /^[A-Za-z0-9_-]*$/;
const EXPIRY = /^\d{1,15}$/;

function parseToken(token: string | undefined): ParsedToken | null {
  if (typeof token !== 'string' || token.length > 2_048) return null;
  const parts = token.split('.');
  if (parts.length !== 4 && parts.length !== 5) return null;
  if (!parts.every((part) => PART.test(part))) return null;
  const signature = parts.pop()!;
  const expires = parts.pop()!;
  if (signature === '' || !EXPIRY.test(expires)) return null;
  const [user, purpose, subject] = parts as [string, string, string | undefined];
  const claims: LinkClaims = { userId: unb64(user), purpose: unb64(purpose), expiresAt: Number(expires) };
  if (subject !== undefined) claims.subject = unb64(subject);
  return { payload: [...parts, expires].join('.'), signature, claims };
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const unb64 = (text: string) => Buffer.from(text, 'base64url').toString('utf8');
