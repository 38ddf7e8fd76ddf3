import { describe, expect, it } from 'vitest';
import { adminMatches, bearerMatches } from '../../lib/http/auth.ts';

const token = 'api-token-0123456789abcdef0123456789';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

describe('bearerMatches', () => {
  it('accepts the token as a bearer credential, the scheme in any case', () => {
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
  });
  it.each([
    ['no header', undefined],
    ['another token', 'Bearer api-token-0123456789abcdef0123456780'],
    ['a prefix of it', `Bearer ${token.slice(0, -1)}`],
    ['it and more', `Bearer ${token}x`],
    ['another scheme', `Basic ${token}`],
    ['no scheme', token],
  ])('refuses %s', (_what, header) => {
    expect(bearerMatches(header, token)).toBe(false);
  });
  it('refuses everything when no token is configured', () => {
    expect(bearerMatches('Bearer ', undefined)).toBe(false);
    expect(bearerMatches('Bearer undefined', undefined)).toBe(false);
  });
});

describe('adminMatches', () => {
  it('accepts the token as a bearer credential or as the password of basic auth, any user', () => {
    expect(adminMatches(`Bearer ${token}`, token)).toBe(true);
    expect(adminMatches(basic('ops', token), token)).toBe(true);
    expect(adminMatches(basic('', token), token)).toBe(true);
  });
  it.each([
    ['no header', undefined],
    ['the token as the user name', basic(token, '')],
    ['another password', basic('ops', `${token}x`)],
    ['basic auth without a colon', `Basic ${Buffer.from(token).toString('base64')}`],
    ['basic auth that is not base64', 'Basic !!!'],
    ['the token unencoded after Basic', `Basic ${token}`],
  ])('refuses %s', (_what, header) => {
    expect(adminMatches(header, token)).toBe(false);
  });
  it('refuses everything when no token is configured', () => {
    expect(adminMatches(basic('ops', 'undefined'), undefined)).toBe(false);
    expect(adminMatches('Bearer undefined', undefined)).toBe(false);
  });
});
