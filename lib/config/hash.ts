// The config in force, as one short fingerprint: /metrics and /readyz show it, so that ops can see
// which replicas run which config after an edit (a reload that was refused keeps the old hash).
import { createHash } from 'node:crypto';
import type { Config } from './schema.ts';

/** sha256 of the config with its keys sorted (the order of a file's keys changes nothing), 16 hex digits. */
export function configHash(config: Config): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
