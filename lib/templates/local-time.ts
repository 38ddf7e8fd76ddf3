// Message times in the recipient's own time zone, named so a reader knows which: the template
// filter `local_time` ({{ openedAt | local_time: timeZone, "zh-CN" }} → 11月22日 17:51（中国标准时间）,
// "en" → Nov 22, 17:51 (China Standard Time)). Intl does the zone rules (daylight saving time
// included); the template names its own locale, as its copy is in it.

const formatters = new Map<string, { time: Intl.DateTimeFormat; zone: Intl.DateTimeFormat }>();

function formattersFor(locale: string, timeZone: string) {
  const key = `${locale}\u0000${timeZone}`;
  let found = formatters.get(key);
  if (!found) {
    found = {
      time: new Intl.DateTimeFormat(locale, {
        timeZone,
        month: locale.startsWith('zh') ? 'numeric' : 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      }),
      zone: new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'long' }),
    };
    formatters.set(key, found);
  }
  return found;
}

/** `at` (an ISO time or epoch ms) as the date and time in `timeZone`, with the zone's name. */
export function localTime(at: unknown, timeZone: unknown, locale: unknown): string {
  const date = new Date(typeof at === 'number' ? at : String(at));
  if (Number.isNaN(date.getTime()))
    throw new Error(
      `local_time: expected an ISO time such as 2026-11-22T09:51:05Z, got ${JSON.stringify(at)}`,
    );
  if (typeof timeZone !== 'string' || typeof locale !== 'string')
    throw new Error('local_time: expected a time zone and a locale, e.g. local_time: timeZone, "zh-CN"');
  const { time, zone } = formattersFor(locale, timeZone);
  const zoneName = zone.formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? timeZone;
  if (!locale.startsWith('zh')) return `${time.format(date)} (${zoneName})`;
  // zh-CN's numeric style is "11/22"; the copy says 11月22日.
  const part = (type: Intl.DateTimeFormatPartTypes) =>
    time.formatToParts(date).find((p) => p.type === type)?.value ?? '';
  return `${part('month')}月${part('day')}日 ${part('hour')}:${part('minute')}（${zoneName}）`;
}
