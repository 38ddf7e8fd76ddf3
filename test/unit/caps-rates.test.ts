// Frequency caps and sending rates, pure parts on fixed instants: the local day in the user's
// zone (Intl), the cap's verdict per category, and the token bucket's arithmetic.
import { describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../lib/config/schema.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { capRule, capVerdict } from '../../lib/notifications/policy.ts';
import { takeTokens } from '../../lib/notifications/rates.ts';
import { findMessageKind, messageKinds } from '../../lib/messages/registry.ts';
import { localDay } from '../../lib/policy/quiet-hours.ts';

const shipped = await loadConfigFile('config/forewarn.yaml');
const config: Config = {
  ...shipped,
  notifications: { ...shipped.notifications, caps: { email: { perDay: 3 }, inapp: { perDay: 10 } } },
};
const iso = (ms: number) => new Date(ms).toISOString();

describe('localDay', () => {
  it('in Shanghai, 23:30 on 4 December began at 16:00 UTC on the 3rd and the next starts at 16:00 UTC on the 4th', () => {
    const day = localDay(Date.parse('2026-12-04T15:30:00Z'), 'Asia/Shanghai');
    expect(iso(day.start)).toBe('2026-12-03T16:00:00.000Z');
    expect(iso(day.next)).toBe('2026-12-04T16:00:00.000Z');
  });

  it('the same instant is 07:30 in Los Angeles: its day began at 08:00 UTC', () => {
    const day = localDay(Date.parse('2026-12-04T15:30:00Z'), 'America/Los_Angeles');
    expect(iso(day.start)).toBe('2026-12-04T08:00:00.000Z');
    expect(iso(day.next)).toBe('2026-12-05T08:00:00.000Z');
  });

  it('a day with a daylight-saving change is 23 hours long (Los Angeles, 8 March 2026)', () => {
    const day = localDay(Date.parse('2026-03-08T20:00:00Z'), 'America/Los_Angeles');
    expect(iso(day.start)).toBe('2026-03-08T08:00:00.000Z');
    expect(iso(day.next)).toBe('2026-03-09T07:00:00.000Z');
  });

  it('exactly at midnight the day starts then', () => {
    const day = localDay(Date.parse('2026-12-03T16:00:00Z'), 'Asia/Shanghai');
    expect(iso(day.start)).toBe('2026-12-03T16:00:00.000Z');
  });
});

describe('capVerdict', () => {
  const at = Date.parse('2026-12-04T15:30:00Z'); // 23:30 in Shanghai
  const message = (category: string) => ({
    kind: 'k',
    category: category as 'service',
    channel: 'email',
    timezone: 'Asia/Shanghai',
    answers: false,
  });

  it('under the cap everything goes', () => {
    for (const category of ['service', 'requested', 'promotional', 'security', 'ops'])
      expect(capVerdict(config, message(category), 2, at)).toEqual({ go: true });
  });

  it('over it a promotional message waits for the next local midnight, with the reason', () => {
    expect(capVerdict(config, message('promotional'), 3, at)).toEqual({
      go: false,
      until: Date.parse('2026-12-04T16:00:00Z'),
      reason:
        'capped: 3 of 3 email messages today in Asia/Shanghai; promotional held until 2026-12-04T16:00:00.000Z',
    });
  });

  it('a service warning over it is cancelled', () => {
    expect(capVerdict(config, message('service'), 3, at)).toEqual({
      go: false,
      until: null,
      reason:
        'capped: 3 of 3 email messages today in Asia/Shanghai; a service message that came tomorrow would be useless, cancelled',
    });
  });

  it('a restock alert the user asked for goes over it: requested messages are counted, never capped', () => {
    expect(capVerdict(config, message('requested'), 3, at)).toEqual({ go: true });
  });

  it('security and ops go over it; so does a message that answers another', () => {
    expect(capVerdict(config, message('security'), 9, at)).toEqual({ go: true });
    expect(capVerdict(config, message('ops'), 9, at)).toEqual({ go: true });
    expect(capVerdict(config, { ...message('service'), answers: true }, 9, at)).toEqual({ go: true });
  });

  it('each channel has its own cap, and a channel without one is never capped', () => {
    expect(capVerdict(config, { ...message('service'), channel: 'inapp' }, 9, at)).toEqual({ go: true });
    expect(capVerdict(config, { ...message('service'), channel: 'inapp' }, 10, at)).toMatchObject({
      go: false,
    });
    expect(capVerdict(config, { ...message('service'), channel: 'webhook' }, 99, at)).toEqual({ go: true });
  });

  it('a user without a known zone is counted in the config zone', () => {
    const verdict = capVerdict(config, { ...message('promotional'), timezone: 'Mars/Base' }, 3, at);
    expect(verdict).toMatchObject({ go: false, until: Date.parse('2026-12-04T16:00:00Z') });
    expect(config.timezone).toBe('Asia/Shanghai');
  });

  it("the claim rule's day start follows its clock past the user's midnight", () => {
    let clock = Date.parse('2026-12-04T15:59:00Z'); // 23:59 in Shanghai
    const rule = capRule(config, () => clock)!;
    expect(rule.dayStart({ timezone: 'Asia/Shanghai' })).toBe(Date.parse('2026-12-03T16:00:00Z'));
    expect(rule.dayStart({ timezone: 'America/Los_Angeles' })).toBe(Date.parse('2026-12-04T08:00:00Z'));
    clock = Date.parse('2026-12-04T16:01:00Z'); // 00:01 the next day there
    expect(rule.dayStart({ timezone: 'Asia/Shanghai' })).toBe(Date.parse('2026-12-04T16:00:00Z'));
    expect(rule.dayStart({ timezone: 'America/Los_Angeles' })).toBe(Date.parse('2026-12-04T08:00:00Z'));
  });

  it('the claim rule knows the recovery notice from the registry, and is absent without caps', () => {
    const rule = capRule(config, () => at)!;
    expect(rule.channels).toEqual(['email', 'inapp']);
    expect(rule.dayStart({ timezone: 'Asia/Shanghai' })).toBe(Date.parse('2026-12-03T16:00:00Z'));
    const recovery = {
      kind: 'payment-recovered',
      category: 'service' as const,
      channel: 'email',
      timezone: null,
    };
    expect(rule.decide(recovery, 5)).toEqual({ go: true });
    expect(rule.decide({ ...recovery, kind: 'payment-degraded' }, 5)).toMatchObject({
      go: false,
      until: null,
    });
    expect(capRule(shipped)).toBeUndefined();
  });
});

describe('kinds that answer another', () => {
  it('name a registered kind of the same watcher, and the payment recovery notice answers its warning', () => {
    const answering = messageKinds.filter((k) => k.answers !== undefined);
    expect(answering.map((k) => [k.id, k.answers])).toEqual([['payment-recovered', 'payment-degraded']]);
    for (const k of answering) expect(findMessageKind(k.answers!)?.on.detector).toBe(k.on.detector);
  });
});

describe('caps and rates config', () => {
  it('refuses a cap that is not a positive integer, and a rate that is not positive', () => {
    const bad = configSchema.safeParse({
      ...shipped,
      notifications: {
        ...shipped.notifications,
        caps: { email: { perDay: 0 } },
        rates: { email: { perSecond: -1 } },
      },
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['notifications.caps.email.perDay', 'notifications.rates.email.perSecond']),
    );
  });

  it('refuses a channel id that no channel could have', () => {
    const bad = configSchema.safeParse({
      ...shipped,
      notifications: { ...shipped.notifications, caps: { Email: { perDay: 3 } } },
    });
    expect(bad.success).toBe(false);
  });
});

describe('takeTokens', () => {
  const limits = { perSecond: 10, burst: 10 };

  it('a new bucket is full: a burst goes at once, the next token comes 100 ms later', () => {
    let { state, waitMs } = takeTokens(null, 10, 0, limits);
    expect(waitMs).toBe(0);
    expect(state.tokens).toBe(0);
    ({ state, waitMs } = takeTokens(state, 1, 0, limits));
    expect(waitMs).toBe(100);
    ({ state, waitMs } = takeTokens(state, 1, 100, limits));
    expect(waitMs).toBe(0);
  });

  it('refills at the rate and never beyond the burst', () => {
    const { state } = takeTokens({ tokens: 0, at: 0 }, 0, 60_000, limits);
    expect(state.tokens).toBe(10);
    expect(takeTokens({ tokens: 2, at: 0 }, 4, 250, limits)).toEqual({
      state: { tokens: 0.5, at: 250 },
      waitMs: 0,
    });
  });

  it('waits for what is missing and takes nothing meanwhile', () => {
    expect(takeTokens({ tokens: 1.5, at: 0 }, 4, 0, limits)).toEqual({
      state: { tokens: 1.5, at: 0 },
      waitMs: 250,
    });
  });

  it('40 messages one at a time at 10/s take 3 s after the first 10', () => {
    let state = null as Parameters<typeof takeTokens>[0];
    let now = 0;
    for (let i = 0; i < 40; i++) {
      for (;;) {
        const r = takeTokens(state, 1, now, limits);
        state = r.state;
        if (r.waitMs === 0) break;
        now += r.waitMs;
      }
    }
    expect(now).toBe(3_000);
  });
});
