// Signed links: a link in a message that acts on an account (notification settings, restock
// reminders and opt-outs, unsubscribing, later security actions) carries an HMAC-SHA256 token over
// who, what, about which subject and until when, so that whoever serves the link (the platform, or
// forewarn's HTTP role) can verify it before acting. Tokens name the key that signed them, so the
// secret can be rotated: FOREWARN_LINK_SECRET signs, FOREWARN_LINK_SECRETS_OLD still verify.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One signing secret and the id tokens name it by (derived from it; never the secret itself). */
export interface LinkKey {
  readonly id: string;
  readonly secret: string;
}

/** The key that signs new tokens, and every key a token may still be verified with. */
export interface LinkKeyring {
  readonly signing: LinkKey;
  /** The signing key first, then the old ones, by id. */
  readonly verifying: ReadonlyMap<string, LinkKey>;
}

/**
 * The keyring from the current secret (it signs) and the secrets it replaced (they still verify,
 * until removed). Built once from the environment (lib/context.ts); an old secret equal to the
 * current one is the current one.
 */
export function linkKeyring(current: string, old: readonly string[] = []): LinkKeyring {
  const signing = linkKey(current);
  const verifying = new Map<string, LinkKey>([[signing.id, signing]]);
  for (const secret of old) {
    const key = linkKey(secret);
    const seen = verifying.get(key.id);
    if (seen !== undefined && seen.secret !== secret) {
      throw new Error('linkKeyring: two link secrets have the same key id; choose another secret');
    }
    if (seen === undefined) verifying.set(key.id, key);
  }
  return { signing, verifying };
}

/** The first 6 bytes of a SHA-256 of the secret, base64url: 8 characters, naming it without telling it. */
function linkKey(secret: string): LinkKey {
  const id = createHash('sha256')
    .update(`forewarn-link-key:${secret}`)
    .digest()
    .subarray(0, 6)
    .toString('base64url');
  return { id, secret };
}

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
 * `v2.keyId.userId.purpose.expiresAt.signature`, or `v2.keyId.userId.purpose.subject.expiresAt.signature`
 * with a subject; each part base64url (no dots), so the forms never read as each other, and the
 * signature covers every part before it, the key id included.
 *
 * Tokens from before key ids (`userId.purpose[.subject].expiresAt.signature`, 4 or 5 parts: the
 * restock links of mails already sent) still verify, against the current secret and each old one.
 */
export function signLinkToken(claims: LinkClaims, keys: LinkKeyring): string {
  if (!Number.isSafeInteger(claims.expiresAt) || claims.expiresAt < 0) {
    throw new RangeError(`signLinkToken: expiresAt: expected epoch seconds, got ${claims.expiresAt}`);
  }
  const parts = [VERSION, keys.signing.id, b64(claims.userId), b64(claims.purpose)];
  if (claims.subject !== undefined) parts.push(b64(claims.subject));
  parts.push(String(claims.expiresAt));
  const payload = parts.join('.');
  return `${payload}.${mac(payload, keys.signing.secret)}`;
}

/**
 * Checks a token for one purpose: its claims when it is well formed, signed with a key of `keys`,
 * for `purpose` and unexpired at `nowSeconds`; otherwise the first reason it fails, in that order
 * (a key id the keyring does not hold, a removed secret, is `forged`).
 */
export function checkLinkToken(
  token: string | undefined,
  keys: LinkKeyring,
  nowSeconds: number,
  purpose: string,
): LinkCheck {
  const parsed = parseToken(token);
  if (!parsed) return { ok: false, reason: 'malformed' };
  if (!keysFor(parsed, keys).some((key) => signatureMatches(parsed, key.secret))) {
    return { ok: false, reason: 'forged' };
  }
  if (parsed.claims.purpose !== purpose) return { ok: false, reason: 'wrong-purpose' };
  if (parsed.claims.expiresAt < nowSeconds) return { ok: false, reason: 'expired' };
  return { ok: true, claims: parsed.claims };
}

/** The claims of a valid, unexpired token, whatever its purpose; null for anything else. */
export function verifyLinkToken(token: string, keys: LinkKeyring, nowSeconds: number): LinkClaims | null {
  const parsed = parseToken(token);
  if (!parsed) return null;
  const result = checkLinkToken(token, keys, nowSeconds, parsed.claims.purpose);
  return result.ok ? result.claims : null;
}

/** Adds `token=<signed token>` to a URL. */
export function signedUrl(base: string, claims: LinkClaims, keys: LinkKeyring): string {
  const url = new URL(base);
  url.searchParams.set('token', signLinkToken(claims, keys));
  return url.toString();
}

/** Asks for a reminder when the product is back (offered with a low-stock notice). */
export const RESTOCK_SUBSCRIBE = 'restock-subscribe';
/** Stops restock alerts for the product (offered with a restock alert). */
export const RESTOCK_STOP = 'restock-stop';

/** Stops one category of messages on one channel (offered in the footer and List-Unsubscribe of emails). */
export const UNSUBSCRIBE = 'unsubscribe';

/** What an unsubscribe link is built from. */
export interface UnsubscribeLinkOptions {
  publicUrl: string;
  keys: LinkKeyring;
  userId: string;
  category: string;
  channel: string;
  /** Epoch seconds after which the link no longer works. */
  expiresAt: number;
}

/** `<public URL>/unsubscribe?token=…`, its subject `<category>/<channel>`. */
export function unsubscribeUrl(options: UnsubscribeLinkOptions): string {
  return signedUrl(
    publicPageUrl(options.publicUrl, 'unsubscribe'),
    {
      userId: options.userId,
      purpose: UNSUBSCRIBE,
      subject: `${options.category}/${options.channel}`,
      expiresAt: options.expiresAt,
    },
    options.keys,
  );
}

/** The category and channel an unsubscribe token's subject names; null when it names none. */
export function unsubscribeSubject(
  subject: string | undefined,
): { category: string; channel: string } | null {
  const match = /^([a-z]+)\/([a-z]+)$/.exec(subject ?? '');
  return match ? { category: match[1]!, channel: match[2]! } : null;
}

/** What a restock link is built from. */
export interface RestockLinkOptions {
  /** Where forewarn's HTTP role is reached from the outside (FOREWARN_PUBLIC_URL), path prefix kept. */
  publicUrl: string;
  keys: LinkKeyring;
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
  return signedUrl(
    publicPageUrl(options.publicUrl, path),
    { userId: options.userId, purpose, subject: options.productId, expiresAt: options.expiresAt },
    options.keys,
  );
}

/** A page of the HTTP role: a base with a path ("https://shop.example.com/forewarn") keeps it. */
export function publicPageUrl(publicUrl: string, path: string): string {
  const base = publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`;
  return new URL(path, base).toString();
}

interface ParsedToken {
  /** Null for a token from before key ids. */
  keyId: string | null;
  payload: string;
  signature: string;
  claims: LinkClaims;
}

const VERSION = 'v2';
const PART = /^[A-Za-z0-9_-]*$/;
const EXPIRY = /^\d{1,15}$/;

function parseToken(token: string | undefined): ParsedToken | null {
  if (typeof token !== 'string' || token.length > 2_048) return null;
  const parts = token.split('.');
  if (!parts.every((part) => PART.test(part))) return null;
  // 4 or 5 parts: a token from before key ids; 6 or 7: "v2" and the key id first.
  const keyed = parts.length === 6 || parts.length === 7;
  if (!keyed && parts.length !== 4 && parts.length !== 5) return null;
  const head = keyed ? parts.splice(0, 2) : [];
  if (keyed && (head[0] !== VERSION || head[1] === '')) return null;
  const signature = parts.pop()!;
  const expires = parts.pop()!;
  if (signature === '' || !EXPIRY.test(expires)) return null;
  const [user, purpose, subject] = parts as [string, string, string | undefined];
  const claims: LinkClaims = { userId: unb64(user), purpose: unb64(purpose), expiresAt: Number(expires) };
  if (subject !== undefined) claims.subject = unb64(subject);
  return {
    keyId: keyed ? head[1]! : null,
    payload: [...head, ...parts, expires].join('.'),
    signature,
    claims,
  };
}

/** The key a token names, or for a token without a key id, every key (the current one first). */
function keysFor(parsed: ParsedToken, keys: LinkKeyring): LinkKey[] {
  if (parsed.keyId === null) return [...keys.verifying.values()];
  const key = keys.verifying.get(parsed.keyId);
  return key === undefined ? [] : [key];
}

function signatureMatches(parsed: ParsedToken, secret: string): boolean {
  const expected = Buffer.from(mac(parsed.payload, secret));
  const given = Buffer.from(parsed.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const unb64 = (text: string) => Buffer.from(text, 'base64url').toString('utf8');
