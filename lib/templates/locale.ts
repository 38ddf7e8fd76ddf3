// Which locale's template a user gets: the exact tag, then the tag with its last parts dropped
// (`en-US` → `en`), then zh-CN. `zh-TW` gets zh-CN unless a zh-TW (or zh) file exists.
import { defaultLocale } from '../../templates/kinds.ts';

/** `zh-cn` → `zh-CN`, `en_US` → `en-US`; null for something that is not a language tag. */
export function canonicalLocale(tag: string): string | null {
  try {
    return Intl.getCanonicalLocales(tag.trim().replace(/_/g, '-'))[0] ?? null;
  } catch {
    return null;
  }
}

export function resolveLocale(available: ReadonlySet<string>, requested: string | null | undefined): string {
  const tag = requested ? canonicalLocale(requested) : null;
  if (tag) {
    const parts = tag.split('-');
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join('-');
      if (available.has(candidate)) return candidate;
    }
  }
  return defaultLocale;
}
