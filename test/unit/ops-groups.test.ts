// The grouped ops alert's email, without services: what the group shares, read from its key;
// each member's text as paragraphs of lines; the email rendered in the first member's language,
// with a Message-ID that is the same for the same members and only for them.
import { beforeAll, describe, expect, it } from 'vitest';
import { groupEmail, groupEmailData } from '../../lib/notifications/deliver-groups.ts';
import type { ClaimedNotification } from '../../lib/notifications/store.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';

describe('groupEmailData', () => {
  const one = [{ subject: 'a', text: 'x' }];

  it.each([
    ['region:CN-GD', 'region', 'CN-GD'],
    ['code:BANK:DECLINED', 'code', 'BANK:DECLINED'],
    ['nightly', null, 'nightly'],
    [':CN-GD', null, ':CN-GD'],
    ['region:', null, 'region:'],
  ])('reads %j as by %j, value %j', (key, by, value) => {
    expect(groupEmailData(key, one, 30)).toMatchObject({ groupKey: key, groupBy: by, groupValue: value });
  });

  it("keeps each member's paragraphs and lines, with no empty ones", () => {
    const data = groupEmailData(
      'region:CN-GD',
      [
        { subject: 'first', text: 'Opened.\nBy payment health.\n\nDashboard:\nhttps://ops.example.com/1' },
        { subject: 'second', text: 'One line.' },
      ],
      30,
    );
    expect(data.count).toBe(2);
    expect(data.waitSeconds).toBe(30);
    expect(data.alerts).toEqual([
      {
        subject: 'first',
        paragraphs: [
          ['Opened.', 'By payment health.'],
          ['Dashboard:', 'https://ops.example.com/1'],
        ],
      },
      { subject: 'second', paragraphs: [['One line.']] },
    ]);
  });
});

describe('groupEmail', () => {
  let templates: TemplateStore;
  beforeAll(async () => {
    templates = await TemplateStore.load();
  });

  const member = (id: string, region: string, locale: string): ClaimedNotification => ({
    id,
    dedupeKey: `cause:${id}:ops-incident-opened:email:ops@example.com`,
    cause: `cause:${id}`,
    incidentId: id,
    kind: 'ops-incident-opened',
    channel: 'email',
    audience: 'ops',
    userId: null,
    address: 'ops@example.com',
    locale,
    category: 'ops',
    groupKey: `region:${region}`,
    data: { ...templateKinds['ops-incident-opened'].sample, incidentId: id, region },
    attempts: 1,
    token: '00000000-0000-4000-8000-000000000000',
  });
  const rendered = (n: ClaimedNotification) => ({ n, message: templates.render(n as never) });
  const group = { groupKey: 'region:CN-GD', kind: 'ops-incident-opened', address: 'ops@example.com' };
  const options = { waitSeconds: 30, messageIdDomain: 'notify.example.com' };

  it("lists every member with its own subject and text, in the first member's language", () => {
    const members = ['11', '12', '13'].map((id) => rendered(member(id, 'CN-GD', 'zh-CN')));
    const email = groupEmail(templates, group, members, options);
    expect(email.to).toBe('ops@example.com');
    expect(email.subject).toBe('[forewarn] 地区 CN-GD：3 条告警');
    for (const { message } of members) {
      expect(email.text).toContain(message.subject);
      for (const line of message.text.split('\n').filter(Boolean)) expect(email.text).toContain(line);
    }
    expect(email.html).toContain('事件 12 已由 payment-health 开启');
    const en = groupEmail(
      templates,
      group,
      ['11', '12'].map((id) => rendered(member(id, 'CN-GD', 'en'))),
      options,
    );
    expect(en.subject).toBe('[forewarn] 2 alerts for region CN-GD');
  });

  it('has one Message-ID for the same members, another for any other set', () => {
    const ids = (list: string[]) =>
      groupEmail(
        templates,
        group,
        list.map((id) => rendered(member(id, 'CN-GD', 'en'))),
        options,
      ).messageId;
    expect(ids(['11', '12'])).toBe(ids(['11', '12']));
    expect(ids(['11', '12'])).not.toBe(ids(['11', '12', '13']));
    expect(ids(['11', '12'])).not.toBe(ids(['11', '13']));
    expect(ids(['11', '12'])).toMatch(/^<[0-9a-f]{64}@notify\.example\.com>$/);
  });
});
