// Parsing of command-line values into typed ones, with errors that say what was expected.
import { InvalidArgumentError } from 'commander';

/** "15s", "2m", "1h", "500ms" → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`expected a duration such as 15s, 2m or 1h, got "${value}"`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(match[1]) * unit;
  if (ms <= 0) throw new InvalidArgumentError(`expected a positive duration, got "${value}"`);
  return ms;
}

/** An ISO 8601 time with a date, e.g. 2026-03-02T10:00:00Z → epoch ms. */
export function parseTime(value: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new InvalidArgumentError(`expected an ISO 8601 time such as 2026-03-02T10:00:00Z, got "${value}"`);
  return ms;
}

export function parseChoice<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${value}"`);
    }
    return value as T;
  };
}

export function parsePositiveInt(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a whole number of 1 or more, got "${value}"`);
  return n;
}

/** How far back to look: "30m", "24h", "7d" → milliseconds. */
export function parseAge(value: string): number {
  const match = /^(\d+)(m|h|d)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`expected a duration such as 30m, 24h or 7d, got "${value}"`);
  const ms = Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
  if (ms <= 0) throw new InvalidArgumentError(`expected a positive duration, got "${value}"`);
  return ms;
}
