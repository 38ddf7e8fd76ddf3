// Who the template studio may send a test message to: the config's allow-list
// (templates.studio.testSendAllow), checked on the server for every test send. A pattern is an
// address (`ops@example.com`) or an address with `*` for any run of characters other than `@`
// (`*@example.com`: anyone at example.com, not at a subdomain; `*@*.example.com`: its subdomains).
// Case is ignored, as mail systems do for domains and most do for the local part.
import { isPlausibleEmailAddress } from '../channels/email.ts';

const PATTERN = /^[^@\s]+@[^@\s]+$/;

/** Why `pattern` is not an allow-list pattern, or null when it is. */
export function allowPatternProblem(pattern: string): string | null {
  if (!PATTERN.test(pattern)) {
    return `"${pattern}" is not an address pattern: expected e.g. "ops@example.com" or "*@example.com" (one @, no spaces)`;
  }
  const domain = pattern.slice(pattern.indexOf('@') + 1);
  if (domain === '*' || !/[a-z0-9-]\.[a-z0-9*-]/i.test(domain)) {
    return `"${pattern}" allows too much: name the domain, e.g. "*@example.com"`;
  }
  return null;
}

function toRegExp(pattern: string): RegExp {
  const source = pattern
    .toLowerCase()
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^@]*');
  return new RegExp(`^${source}$`);
}

/** The first pattern that lets `address` through, or null (also for anything not an address). */
export function allowedBy(address: string, patterns: readonly string[]): string | null {
  if (!isPlausibleEmailAddress(address)) return null;
  const lower = address.toLowerCase();
  return patterns.find((pattern) => toRegExp(pattern).test(lower)) ?? null;
}
