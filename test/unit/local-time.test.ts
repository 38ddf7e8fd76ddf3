// Message times are printed in the recipient's own time zone and say which zone, in zh-CN and en:
// the `local_time` filter (Intl, daylight saving time included), the zone a recipient's messages
// use (theirs, or the config's when theirs is unknown or not a zone), and the users' email copy,
// which no longer calls every time Beijing time.
import { beforeAll, describe, expect, it } from 'vitest';
import { messageTimeZone } from '../../lib/messages/shared.ts';
import { localTime } from '../../lib/templates/local-time.ts';
import { TemplateStore, type RenderRequest } from '../../lib/templates/store.ts';
import { templateKinds, type TemplateKind } from '../../templates/kinds.ts';

const AT = '2026-11-22T09:51:05.000Z';
const SUMMER = '2026-07-22T09:51:05.000Z';

describe('local_time', () => {
  it('prints the time in the given zone, with the zone named in the locale', () => {
    expect(localTime(AT, 'Asia/Shanghai', 'zh-CN')).toBe('11月22日 17:51（中国标准时间）');
    expect(localTime(AT, 'Asia/Shanghai', 'en')).toBe('Nov 22, 17:51 (China Standard Time)');
    expect(localTime(AT, 'America/Los_Angeles', 'en')).toBe('Nov 22, 01:51 (Pacific Standard Time)');
    expect(localTime(AT, 'America/Los_Angeles', 'zh-CN')).toBe('11月22日 01:51（北美太平洋标准时间）');
    // Daylight saving time: another hour, another name.
    expect(localTime(SUMMER, 'America/Los_Angeles', 'en')).toBe('Jul 22, 02:51 (Pacific Daylight Time)');
    // The date is the zone's own: late on the 22nd in Shanghai is still the 21st in Los Angeles.
    expect(localTime('2026-11-22T01:30:00+08:00', 'America/Los_Angeles', 'en')).toBe(
      'Nov 21, 09:30 (Pacific Standard Time)',
    );
  });

  it('refuses what is not a time', () => {
    expect(() => localTime('yesterday', 'Asia/Shanghai', 'en')).toThrow(/expected an ISO time/);
  });
});

describe('the zone of a recipient’s messages', () => {
  const ctx = { config: () => ({ timezone: 'Asia/Shanghai' }) } as unknown as Parameters<
    typeof messageTimeZone
  >[0];
  it('is theirs when Intl knows it, the config’s otherwise', () => {
    expect(messageTimeZone(ctx, { timezone: 'Europe/London' })).toBe('Europe/London');
    expect(messageTimeZone(ctx, { timezone: 'Mars/Olympus_Mons' })).toBe('Asia/Shanghai');
    expect(messageTimeZone(ctx, { timezone: null })).toBe('Asia/Shanghai');
    expect(messageTimeZone(ctx, {})).toBe('Asia/Shanghai');
  });
});

describe('users’ email copy', () => {
  let store: TemplateStore;
  beforeAll(async () => {
    store = await TemplateStore.load();
  });

  const TIMED = {
    'payment-degraded': 'openedAt',
    'payment-recovered': 'recoveredAt',
    'stock-low': 'earliestOrderedAt',
    'restock-alert': 'restockedAt',
  } as const;

  for (const [kind, field] of Object.entries(TIMED) as Array<[keyof typeof TIMED, string]>) {
    it(`${kind} prints its time in the recipient's zone, named, in zh-CN and en`, () => {
      const data = { ...templateKinds[kind].sample, [field]: AT, timeZone: 'America/Los_Angeles' };
      const render = (locale: string) =>
        store.render({ kind, channel: 'email', locale, data } as RenderRequest<TemplateKind>);
      const zh = render('zh-CN');
      const en = render('en');
      expect(zh.text).toContain('11月22日 01:51（北美太平洋标准时间）');
      expect(en.text).toContain('Nov 22, 01:51 (Pacific Standard Time)');
      for (const part of [zh.text, zh.html ?? '', en.text, en.html ?? '']) {
        expect(part).not.toMatch(/北京时间|Beijing/);
      }
      const home = store.render({
        kind,
        channel: 'email',
        locale: 'en',
        data: { ...data, timeZone: 'Asia/Shanghai' },
      } as RenderRequest<TemplateKind>);
      expect(home.text).toContain('Nov 22, 17:51 (China Standard Time)');
    });
  }

  it('refuses data whose zone is not a time zone', () => {
    expect(() =>
      store.render({
        kind: 'payment-degraded',
        channel: 'email',
        locale: 'en',
        data: { ...templateKinds['payment-degraded'].sample, timeZone: 'Beijing' },
      } as RenderRequest<TemplateKind>),
    ).toThrow(/timeZone/);
  });
});

describe('a message recorded before times were the reader’s own', () => {
  it('has no timeZone and is printed in Beijing time, as it was written for', async () => {
    const store = await TemplateStore.load();
    const { timeZone: _none, ...old } = { ...templateKinds['payment-degraded'].sample, openedAt: AT };
    const rendered = store.render({
      kind: 'payment-degraded',
      channel: 'email',
      locale: 'zh-CN',
      data: old,
    } as RenderRequest<'payment-degraded'>);
    expect(rendered.text).toContain('11月22日 17:51（中国标准时间）');
  });
});

describe('ops email copy', () => {
  it('prints times in the zone the data names (the config’s), and no kind says Beijing time', async () => {
    const store = await TemplateStore.load();
    const data = { ...templateKinds['ops-incident-opened'].sample, openedAt: AT, timeZone: 'Europe/London' };
    const en = store.render({
      kind: 'ops-incident-opened',
      channel: 'email',
      locale: 'en',
      data,
    } as RenderRequest<'ops-incident-opened'>);
    expect(en.text).toContain(`Opened at: ${AT}, Nov 22, 09:51 (Greenwich Mean Time)`);
    const zh = store.render({
      kind: 'ops-incident-opened',
      channel: 'email',
      locale: 'zh-CN',
      data,
    } as RenderRequest<'ops-incident-opened'>);
    expect(zh.text).toContain(`开启时间：${AT}，即 11月22日 09:51（格林尼治标准时间）`);
    for (const [kind, definition] of Object.entries(templateKinds)) {
      for (const channel of definition.channels) {
        for (const locale of ['zh-CN', 'en']) {
          const rendered = store.render({
            kind,
            channel,
            locale,
            data: definition.sample,
          } as RenderRequest<TemplateKind>);
          expect(`${rendered.subject ?? ''}${rendered.text}`, `${kind} ${channel} ${locale}`).not.toMatch(
            /北京时间|Beijing/,
          );
        }
      }
    }
  });
});
