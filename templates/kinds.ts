// The one place that declares every message kind: who it is for, the channels it is sent on, the
// variables its templates may use (a zod schema; `forewarn templates lint` refuses any other) and
// the sample data that `forewarn templates preview` and the linter render. A template file for a
// kind lives in templates/<kind>/<locale>.<channel>.liquid.
//
// Strings marked "platform data" come from the platform's database and may hold anything,
// including markup; the renderer escapes them in HTML, so templates never need to.
import { z } from 'zod';

export const templateChannels = ['email', 'inapp'] as const;
export type TemplateChannel = (typeof templateChannels)[number];

/** Every kind has this locale for each of its channels; users whose locale has no template get it. */
export const defaultLocale = 'zh-CN';
/** Locales every kind must provide for each of its channels (checked by the linter). */
export const requiredLocales = ['zh-CN', 'en'] as const;

export interface KindDefinition<S extends z.ZodType, C extends readonly TemplateChannel[]> {
  /** Who reads it: platform users or forewarn's ops team. */
  audience: 'users' | 'ops';
  description: string;
  channels: C;
  schema: S;
  /**
   * What each variable holds, in plain words for the people who write the templates (the template
   * studio shows them beside an example from the sample data). One for every variable.
   */
  variables: VariableNotes<S>;
  /** Rendered by `templates preview` and by the linter. */
  sample: z.input<S>;
  /** More data the linter renders every template with: the edge cases (nulls, empty lists). */
  variants?: Record<string, z.input<S>>;
}

/** A note for each top-level variable of a kind's schema (checked by the linter too). */
export type VariableNotes<S extends z.ZodType> = { readonly [K in keyof z.output<S>]-?: string };

function defineKind<S extends z.ZodType, const C extends readonly TemplateChannel[]>(
  definition: KindDefinition<S, C>,
): KindDefinition<S, C> {
  return definition;
}

const isoTime = z.iso.datetime({ offset: true });
/** Only http(s): a link in a message must never run script. */
const webUrl = z.url({ protocol: /^https?$/ });
const displayName = z.string().min(1);
/**
 * The recipient's IANA time zone (the config's when theirs is unknown): their message's times are
 * printed in it. A message recorded before times were the reader's own has none; it was written
 * for Beijing time, so it keeps that.
 */
const timeZone = z
  .string()
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone such as Asia/Shanghai')
  .default('Asia/Shanghai');
const issueKind = z.enum(['failures', 'slow']);

const evidence = z
  .object({
    /** 0 when the pair is no longer observed. */
    windowSeconds: z.number().int().nonnegative(),
    attempts: z.number().int().nonnegative(),
    bad: z.number().int().nonnegative(),
    rate: z.number().min(0).max(1),
    lowerBound: z.number().min(0).max(1),
    upperBound: z.number().min(0).max(1),
    baseline: z.number().min(0).max(1),
    threshold: z.number().min(0).max(1),
    confidence: z.number().gt(0).lt(1),
    /** Distinct users behind the bad attempts (counted up to the largest minUsers). */
    users: z.number().int().nonnegative(),
    /** Median confirmation time in the window, and the pair's learned median; null when unknown. */
    medianLatencyMs: z.number().nonnegative().nullable(),
    baselineLatencyMs: z.number().nonnegative().nullable(),
    /** Platform data: the most frequent error codes of the window's failures. */
    topErrorCodes: z.array(
      z.object({ code: z.string().min(1), count: z.number().int().positive() }).strict(),
    ),
  })
  .strict();

const opsIncidentOpened = z
  .object({
    incidentId: z.string().min(1),
    detector: z.string().min(1),
    /** Channel id, e.g. `wechat_pay`. */
    channel: z.string().min(1),
    /** Platform data. */
    channelName: displayName,
    region: z.string().min(1),
    kind: issueKind,
    openedAt: isoTime,
    /** The zone its times are printed in: the config's `timezone` for ops. */
    timeZone,
    evidence,
    /** Channel ids, best first. */
    backupChannels: z.array(z.string().min(1)),
    dashboardUrl: webUrl.nullable(),
  })
  .strict();

const opsSampleOpened: z.input<typeof opsIncidentOpened> = {
  incidentId: '1842',
  detector: 'payment-health',
  channel: 'wechat_pay',
  channelName: '微信支付',
  region: 'CN-GD',
  kind: 'failures',
  openedAt: '2026-11-22T09:51:05.000Z',
  evidence: {
    windowSeconds: 30,
    attempts: 117,
    bad: 117,
    rate: 1,
    lowerBound: 0.9183,
    upperBound: 1,
    baseline: 0.03,
    threshold: 0.11,
    confidence: 0.9999,
    users: 3,
    medianLatencyMs: 1180,
    baselineLatencyMs: 1050,
    topErrorCodes: [
      { code: 'GATEWAY_TIMEOUT', count: 71 },
      { code: 'CHANNEL_UNAVAILABLE', count: 46 },
    ],
  },
  backupChannels: ['alipay', 'qq_wallet', 'unionpay'],
  dashboardUrl: 'https://ops.example.com/forewarn/incidents/1842',
};

const opsErrorSpike = z
  .object({
    incidentId: z.string().min(1),
    /** Platform data: the gateway's or platform's error code. */
    code: z.string().min(1),
    /** count: a normally rare code reached the count threshold; surge: its rate jumped above its own. */
    rule: z.enum(['count', 'surge']),
    /** Occurrences in the rule's window now. */
    countNow: z.number().int().nonnegative(),
    /** What the code usually has in a window of that length (may be fractional). */
    countBefore: z.number().nonnegative(),
    /** The rule's window: 10080 for 7 days, 60 for an hour. */
    windowMinutes: z.number().int().positive(),
    openedAt: isoTime,
    /** The zone its times are printed in: the config's `timezone` for ops. */
    timeZone,
    /** Platform data: channel ids, most affected first. */
    topChannels: z.array(
      z.object({ channel: z.string().min(1), count: z.number().int().positive() }).strict(),
    ),
    topRegions: z.array(z.object({ region: z.string().min(1), count: z.number().int().positive() }).strict()),
    /** Newest first. */
    exampleAttemptIds: z.array(z.string().min(1)),
    dashboardUrl: webUrl.nullable(),
  })
  .strict();

const opsErrorSpikeSample: z.input<typeof opsErrorSpike> = {
  incidentId: '2311',
  code: 'RISK_REJECTED_3DS',
  rule: 'count',
  countNow: 10,
  countBefore: 0.8,
  windowMinutes: 10080,
  openedAt: '2026-11-22T09:51:00.000Z',
  topChannels: [
    { channel: 'unionpay', count: 7 },
    { channel: 'bank_card', count: 3 },
  ],
  topRegions: [
    { region: 'CN-GD', count: 6 },
    { region: 'CN-SH', count: 3 },
    { region: 'CN-BJ', count: 1 },
  ],
  exampleAttemptIds: ['88172612', '88172540', '88160013', '88151120', '88149907'],
  dashboardUrl: 'https://ops.example.com/forewarn/incidents/2311',
};

const opsStockLow = z
  .object({
    incidentId: z.string().min(1),
    productId: z.string().min(1),
    /** Platform data: the product's name. */
    productName: displayName,
    stock: z.number().int().nonnegative(),
    /** The product's own low_stock_threshold, or the configured default. */
    threshold: z.number().int().nonnegative(),
    /** Units of pending and fulfilled orders per day over the sales window. */
    salesPerDay: z.number().nonnegative(),
    /** Stock over sales per day; null when nothing sold in the window. */
    daysOfCover: z.number().nonnegative().nullable(),
    pendingOrders: z.number().int().nonnegative(),
    pendingUnits: z.number().int().nonnegative(),
    /** threshold: at or under the threshold; cover: fewer days of cover than configured. */
    reason: z.enum(['threshold', 'cover']),
    openedAt: isoTime,
    /** The zone its times are printed in: the config's `timezone` for ops. */
    timeZone,
    dashboardUrl: webUrl.nullable(),
  })
  .strict();

const opsSampleStockLow: z.input<typeof opsStockLow> = {
  incidentId: '2291',
  productId: 'steam-cn-100',
  productName: 'Steam 钱包充值卡 100 元',
  stock: 8,
  threshold: 10,
  salesPerDay: 14.286,
  daysOfCover: 0.56,
  pendingOrders: 12,
  pendingUnits: 15,
  reason: 'threshold',
  openedAt: '2026-11-22T09:51:00.000Z',
  dashboardUrl: 'https://ops.example.com/forewarn/incidents/2291',
};

/**
 * A security check-up after days without activity (the account-inactivity watcher). Nothing in it
 * is a secret or a signed link: the only URL it may show is the platform's own security page.
 */
const securityCheckup = z
  .object({
    /** The platform's name as configured (e.g. 示例卡盟); not platform data. */
    siteName: z.string().min(1),
    /**
     * The last activity (or, when neverSignedIn, the sign-up) date, already written for the
     * user's locale in the user's own time zone, e.g. 2026年11月30日 or 30 November 2026. Write it
     * as it is: no `date` filter, no "Beijing time".
     */
    lastActiveDate: z.string().min(1),
    /** The user's IANA time zone, e.g. Asia/Shanghai (the zone lastActiveDate is written in). */
    timezone: z.string().min(1),
    /** True when the user never signed in after signing up; lastActiveDate is the sign-up date. */
    neverSignedIn: z.boolean(),
    /** Whole days without activity when the check-up was decided. */
    idleDays: z.number().int().min(1),
    /** The configured step reached (3, 30, ...). */
    stepDays: z.number().int().min(1),
    /** The platform's configured account-security page on its fixed domain; null: show no link at all. */
    securityUrl: webUrl.nullable(),
  })
  .strict();

const securityCheckupSample: z.input<typeof securityCheckup> = {
  siteName: '示例卡盟',
  lastActiveDate: '2026年11月30日',
  timezone: 'Asia/Shanghai',
  neverSignedIn: false,
  idleDays: 3,
  stepDays: 3,
  securityUrl: 'https://shop.example.com/account/security',
};

const securityCheckupVariants: Record<string, z.input<typeof securityCheckup>> = {
  'no security page': {
    ...securityCheckupSample,
    lastActiveDate: '2026年11月2日',
    idleDays: 31,
    stepDays: 30,
    securityUrl: null,
  },
  'never signed in': {
    ...securityCheckupSample,
    lastActiveDate: '2026年11月26日',
    neverSignedIn: true,
    idleDays: 7,
    stepDays: 3,
  },
  'an English date, another zone, one day': {
    siteName: 'Example Card Shop',
    lastActiveDate: '2 December 2026',
    timezone: 'Europe/London',
    neverSignedIn: false,
    idleDays: 1,
    stepDays: 1,
    securityUrl: 'https://shop.example.com/account/security',
  },
  'years idle, never signed in, no security page': {
    ...securityCheckupSample,
    lastActiveDate: '2023年12月3日',
    neverSignedIn: true,
    idleDays: 1096,
    stepDays: 365,
    securityUrl: null,
  },
};

const securityCheckupReminder = securityCheckup
  .extend({
    /** The step of the earlier check-up in this inactivity period (3 when this one is at 30). */
    previousStepDays: z.number().int().min(1),
  })
  .strict();

const securityCheckupReminderSample: z.input<typeof securityCheckupReminder> = {
  ...securityCheckupSample,
  lastActiveDate: '2026年11月3日',
  idleDays: 30,
  stepDays: 30,
  previousStepDays: 3,
};

/** Notes shared by the kinds that take these variables. */
const userLinks = {
  preferencesUrl:
    'A personal link to the user’s notification settings page (where they choose which messages they get, and how).',
  unsubscribeUrl:
    'Email only: a personal one-click link that stops these messages by email. Empty in in-app messages, so put it inside {% if unsubscribeUrl %}.',
  timeZone:
    'The reader’s time zone, e.g. Asia/Shanghai. Give it to local_time so times are printed in the reader’s own clock: {{ openedAt | local_time: timeZone, "zh-CN" }}.',
} as const;

const evidenceNote =
  'The numbers behind the decision, in parts: attempts and bad (how many payments, how many failed or were slow), rate (the bad share, 0 to 1), baseline (the usual share), threshold (the share that counts as an incident), users (people affected), medianLatencyMs and baselineLatencyMs (confirmation time now and usually, in milliseconds, may be empty), windowSeconds, topErrorCodes (a list of code and count).';

const opsOpenedNotes = {
  incidentId: 'The incident’s number, as ops see it in the dashboard and in `forewarn incidents show`.',
  detector: 'Which watcher found it, e.g. payment-health.',
  channel: 'The payment channel’s technical id, e.g. wechat_pay.',
  channelName: 'The payment channel’s name as shoppers see it, e.g. 微信支付 (from the platform).',
  region: 'The region code, e.g. CN-GD for Guangdong.',
  kind: 'What is wrong: "failures" (payments fail) or "slow" (payments take long to confirm).',
  openedAt: 'When the incident opened. Print it with local_time and timeZone.',
  timeZone: 'The time zone ops read times in (the config’s timezone). Give it to local_time.',
  evidence: evidenceNote,
  backupChannels:
    'The other channels that work in the region, best first (technical ids; may be an empty list).',
  dashboardUrl: 'A link to the incident in the ops dashboard; empty when no dashboard is configured.',
} as const;

const securityCheckupNotes = {
  siteName: 'The shop’s name, as configured, e.g. 示例卡盟.',
  lastActiveDate:
    'The date of the user’s last activity (or of signing up, when neverSignedIn), already written in the user’s language and time zone, e.g. 2026年11月30日. Print it as it is.',
  timezone: 'The user’s time zone, e.g. Asia/Shanghai: the zone lastActiveDate is written in.',
  neverSignedIn:
    'Yes (true) when the user never signed in after signing up; then lastActiveDate is the sign-up date.',
  idleDays: 'How many whole days the account has had no activity.',
  stepDays: 'The step of the check-up reached: after 3, 30, ... days without activity.',
  securityUrl:
    'The shop’s own account-security page (email only); empty when none is configured, then show no link at all.',
} as const;

export const templateKinds = {
  'payment-degraded': defineKind({
    audience: 'users',
    description:
      'A payment channel is failing or slow to confirm in the user’s region: what is happening, what to use instead.',
    channels: ['email', 'inapp'],
    variables: {
      userName:
        'The user’s display name on the platform, e.g. 小林; empty when they have none, so write {% if userName %}.',
      channelName: 'The payment channel’s name as shoppers see it, e.g. 微信支付 (from the platform).',
      region: 'The user’s region code, e.g. CN-GD for Guangdong.',
      issue: 'What is wrong: "failures" (payments fail) or "slow" (payments take long to confirm).',
      backupChannelName:
        'The best other payment channel to use instead, e.g. 支付宝; empty when there is none.',
      backupChannelNames:
        'All the other channels that work, best first (a list, may be empty): loop over it with {% for name in backupChannelNames %}.',
      openedAt: 'When the trouble started. Print it with local_time and timeZone.',
      timeZone: userLinks.timeZone,
      payUrl: 'The link to the recharge page.',
      preferencesUrl: userLinks.preferencesUrl,
      unsubscribeUrl: userLinks.unsubscribeUrl,
    },
    schema: z
      .object({
        /** Platform data; null when the user has no display name. */
        userName: displayName.nullable(),
        /** Platform data: the channel's display name, e.g. 微信支付. */
        channelName: displayName,
        region: z.string().min(1),
        issue: issueKind,
        /** Platform data: the best backup channel's display name; null when there is none. */
        backupChannelName: displayName.nullable(),
        /** Platform data: every backup's display name, best first (may be empty). */
        backupChannelNames: z.array(displayName),
        openedAt: isoTime,
        timeZone,
        /** The recharge page. */
        payUrl: webUrl,
        /** Signed link to the user's notification preferences. */
        preferencesUrl: webUrl,
        /**
         * Email only (null in-app): signed link that stops this category by email at once
         * (List-Unsubscribe too; lib/messages/unsubscribe.ts).
         */
        unsubscribeUrl: webUrl.nullable().default(null),
      })
      .strict(),
    sample: {
      userName: '小林',
      channelName: '微信支付',
      region: 'CN-GD',
      issue: 'failures',
      backupChannelName: '支付宝',
      backupChannelNames: ['支付宝', 'QQ钱包', '云闪付'],
      openedAt: '2026-11-22T09:51:05.000Z',
      timeZone: 'Asia/Shanghai',
      payUrl: 'https://shop.example.com/recharge',
      preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      unsubscribeUrl: 'https://forewarn.example.com/unsubscribe?token=sample-token',
    },
    variants: {
      'slow, no name, no backup': {
        userName: null,
        channelName: '银联云闪付',
        region: 'CN-SH',
        issue: 'slow',
        backupChannelName: null,
        backupChannelNames: [],
        openedAt: '2026-11-22T20:03:00.000Z',
        timeZone: 'America/Los_Angeles',
        payUrl: 'https://shop.example.com/recharge',
        preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      },
    },
  }),

  'payment-recovered': defineKind({
    audience: 'users',
    description: 'The channel a user was warned about works normally again; nothing to do.',
    channels: ['email', 'inapp'],
    variables: {
      userName:
        'The user’s display name on the platform, e.g. 小林; empty when they have none, so write {% if userName %}.',
      channelName: 'The payment channel that works again, as shoppers see it, e.g. 微信支付.',
      region: 'The user’s region code, e.g. CN-GD for Guangdong.',
      recoveredAt: 'When the channel worked normally again. Print it with local_time and timeZone.',
      timeZone: userLinks.timeZone,
      payUrl: 'The link to the recharge page.',
      preferencesUrl: userLinks.preferencesUrl,
      unsubscribeUrl: userLinks.unsubscribeUrl,
    },
    schema: z
      .object({
        /** Platform data; null when the user has no display name. */
        userName: displayName.nullable(),
        /** Platform data: the channel's display name. */
        channelName: displayName,
        region: z.string().min(1),
        recoveredAt: isoTime,
        timeZone,
        payUrl: webUrl,
        preferencesUrl: webUrl,
        /**
         * Email only (null in-app): signed link that stops this category by email at once
         * (List-Unsubscribe too; lib/messages/unsubscribe.ts).
         */
        unsubscribeUrl: webUrl.nullable().default(null),
      })
      .strict(),
    sample: {
      userName: '小林',
      channelName: '微信支付',
      region: 'CN-GD',
      recoveredAt: '2026-11-22T10:32:00.000Z',
      timeZone: 'Asia/Shanghai',
      payUrl: 'https://shop.example.com/recharge',
      preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      unsubscribeUrl: 'https://forewarn.example.com/unsubscribe?token=sample-token',
    },
    variants: {
      'no name': {
        userName: null,
        channelName: '支付宝',
        region: 'CN-BJ',
        recoveredAt: '2026-11-22T23:59:59+08:00',
        timeZone: 'Europe/London',
        payUrl: 'https://shop.example.com/recharge',
        preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      },
    },
  }),

  'ops-incident-opened': defineKind({
    audience: 'ops',
    description: 'An incident opened: the numbers behind it, for the ops team.',
    channels: ['email'],
    variables: opsOpenedNotes,
    schema: opsIncidentOpened,
    sample: opsSampleOpened,
    variants: {
      'slow, no backups, no dashboard': {
        ...opsSampleOpened,
        kind: 'slow',
        evidence: {
          ...opsSampleOpened.evidence,
          bad: 41,
          rate: 0.3504,
          lowerBound: 0.2253,
          upperBound: 0.5003,
          baseline: 0.01,
          threshold: 0.11,
          medianLatencyMs: 23850,
          baselineLatencyMs: 1200,
        },
        backupChannels: [],
        dashboardUrl: null,
      },
    },
  }),

  'ops-incident-resolved': defineKind({
    audience: 'ops',
    description: 'An incident resolved: how long it lasted and the numbers that ended it.',
    channels: ['email'],
    variables: {
      ...opsOpenedNotes,
      resolvedAt: 'When the incident ended. Print it with local_time and timeZone.',
      durationMinutes: 'How long the incident lasted, in minutes.',
      reason:
        'Why it ended: "recovered" (works again), "unobserved" (no more payments to judge), "relearned" (the new level became the normal one).',
      resolveEvidence: 'The numbers that ended it, in the same parts as evidence.',
    },
    schema: opsIncidentOpened
      .extend({
        resolvedAt: isoTime,
        durationMinutes: z.number().nonnegative(),
        /** recovered; unobserved: no attempts any more (silent, disabled); relearned: a lasting level taken as normal. */
        reason: z.enum(['recovered', 'unobserved', 'relearned']),
        resolveEvidence: evidence,
      })
      .strict(),
    sample: {
      ...opsSampleOpened,
      resolvedAt: '2026-11-22T10:32:00.000Z',
      durationMinutes: 41,
      reason: 'recovered',
      resolveEvidence: {
        windowSeconds: 30,
        attempts: 132,
        bad: 2,
        rate: 0.0152,
        lowerBound: 0.0021,
        upperBound: 0.1003,
        baseline: 0.03,
        threshold: 0.11,
        confidence: 0.9999,
        users: 0,
        medianLatencyMs: null,
        baselineLatencyMs: null,
        topErrorCodes: [],
      },
    },
    variants: {
      'no backups, no dashboard': {
        ...opsSampleOpened,
        backupChannels: [],
        dashboardUrl: null,
        resolvedAt: '2026-11-22T09:53:05.000Z',
        durationMinutes: 2,
        reason: 'unobserved',
        resolveEvidence: {
          windowSeconds: 120,
          attempts: 12,
          bad: 0,
          rate: 0,
          lowerBound: 0,
          upperBound: 0.557,
          baseline: 0.03,
          threshold: 0.11,
          confidence: 0.9999,
          users: 0,
          medianLatencyMs: null,
          baselineLatencyMs: null,
          topErrorCodes: [],
        },
      },
    },
  }),

  'stock-low': defineKind({
    audience: 'users',
    description:
      'A product the user has a pending order for is running short: delivery may be delayed; a restock reminder is offered.',
    channels: ['email', 'inapp'],
    variables: {
      productName: 'The product’s name, e.g. Steam 钱包充值卡 100 元 (from the platform).',
      pendingOrders: 'How many orders for it the user is waiting on (1 or more).',
      earliestOrderedAt:
        'When the user placed the earliest of those orders. Print it with local_time and timeZone.',
      timeZone: userLinks.timeZone,
      restockUrl: 'A personal link: ask to be told when the product is back in stock.',
      preferencesUrl: userLinks.preferencesUrl,
      unsubscribeUrl: userLinks.unsubscribeUrl,
    },
    schema: z
      .object({
        /** Platform data: the product's name. */
        productName: displayName,
        /** The user's pending orders for the product (at least 1). */
        pendingOrders: z.number().int().positive(),
        /** When the user's earliest pending order for it was placed. */
        earliestOrderedAt: isoTime,
        timeZone,
        /** Signed link: ask for a reminder when the product is back in stock. */
        restockUrl: webUrl,
        /** Signed link to the user's notification preferences. */
        preferencesUrl: webUrl,
        /**
         * Email only (null in-app): signed link that stops this category by email at once
         * (List-Unsubscribe too; lib/messages/unsubscribe.ts).
         */
        unsubscribeUrl: webUrl.nullable().default(null),
      })
      .strict(),
    sample: {
      productName: 'Steam 钱包充值卡 100 元',
      pendingOrders: 1,
      earliestOrderedAt: '2026-11-22T09:12:00.000Z',
      timeZone: 'Asia/Shanghai',
      restockUrl: 'https://shop.example.com/restock/subscribe?product=steam-cn-100&token=sample-token',
      preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      unsubscribeUrl: 'https://forewarn.example.com/unsubscribe?token=sample-token',
    },
    variants: {
      'several orders': {
        productName: 'Apple Gift Card US$50',
        pendingOrders: 3,
        earliestOrderedAt: '2026-11-21T23:59:59+08:00',
        timeZone: 'America/New_York',
        restockUrl: 'https://shop.example.com/restock/subscribe?product=apple-us-50&token=sample-token',
        preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      },
    },
  }),

  'ops-stock-low': defineKind({
    audience: 'ops',
    description:
      'A product turned low on stock: its stock, sales per day, days of cover and pending orders, for the ops team.',
    channels: ['email'],
    variables: {
      incidentId: opsOpenedNotes.incidentId,
      productId: 'The product’s technical id, e.g. steam-cn-100.',
      productName: 'The product’s name, e.g. Steam 钱包充值卡 100 元 (from the platform).',
      stock: 'Units in stock now.',
      threshold: 'The stock level that counts as low for this product.',
      salesPerDay: 'Units sold per day lately (may have decimals: round it).',
      daysOfCover: 'How many days the stock lasts at that pace; empty when nothing sold.',
      pendingOrders: 'Orders waiting for this product.',
      pendingUnits: 'Units those orders need.',
      reason: 'Why it is low: "threshold" (at or under the threshold) or "cover" (too few days of cover).',
      openedAt: 'When it was found. Print it with local_time and timeZone.',
      timeZone: opsOpenedNotes.timeZone,
      dashboardUrl: opsOpenedNotes.dashboardUrl,
    },
    schema: opsStockLow,
    sample: opsSampleStockLow,
    variants: {
      'cover, nothing pending, no dashboard': {
        ...opsSampleStockLow,
        stock: 120,
        threshold: 20,
        salesPerDay: 85.714,
        daysOfCover: 1.4,
        pendingOrders: 0,
        pendingUnits: 0,
        reason: 'cover',
        dashboardUrl: null,
      },
      'nothing sold': { ...opsSampleStockLow, stock: 0, salesPerDay: 0, daysOfCover: null },
    },
  }),

  'ops-maintenance': defineKind({
    audience: 'ops',
    description:
      'A maintenance window (config maintenance.windows) is on: the subjects it names warn no users until it ends. Sent once per occurrence of the window.',
    channels: ['email'],
    variables: {
      window: 'The maintenance window’s name in the config, e.g. "unionpay-nightly".',
      detector: opsOpenedNotes.detector,
      subjectKey: 'What the incident is about, as the watcher names it: for payments "channel:region".',
      incidentKind: 'The kind of trouble of the incident that fell in the window, e.g. "failures".',
      startsAt: 'When this occurrence of the window began. Print it with local_time and timeZone.',
      endsAt: 'When it ends and users are warned again. Print it with local_time and timeZone.',
      timeZone: opsOpenedNotes.timeZone,
    },
    schema: z
      .object({
        /** The window's name in the config. */
        window: z.string().min(1),
        /** The detector and subject whose incident first fell in this occurrence. */
        detector: z.string().min(1),
        subjectKey: z.string().min(1),
        incidentKind: z.string().min(1),
        startsAt: isoTime,
        endsAt: isoTime,
        /** The zone its times are printed in: the config's `timezone` for ops. */
        timeZone,
      })
      .strict(),
    sample: {
      window: 'unionpay-nightly',
      detector: 'payment-health',
      subjectKey: 'unionpay:CN-GD',
      incidentKind: 'failures',
      startsAt: '2026-11-22T15:30:00.000Z',
      endsAt: '2026-11-22T16:30:00.000Z',
    },
  }),
  'ops-feed-silent': defineKind({
    audience: 'ops',
    description:
      'Most payment pairs went silent at once (the platform data feed looks stalled), or attempts arrive again.',
    channels: ['email'],
    variables: {
      detector: opsOpenedNotes.detector,
      state: '"silent" (the platform’s payment data stopped arriving) or "resumed" (it arrives again).',
      silentSince: 'When the data stopped. Print it with local_time and timeZone.',
      timeZone: opsOpenedNotes.timeZone,
      resumedAt: 'When the data came back; empty while it is still silent.',
      silentPairs: 'How many channel-and-region pairs went quiet.',
      seenPairs: 'How many pairs had payments in the last day.',
      openIncidents: 'Incidents kept open meanwhile.',
    },
    schema: z
      .object({
        detector: z.string().min(1),
        /** silent: the feed stopped; resumed: attempts arrive again. */
        state: z.enum(['silent', 'resumed']),
        silentSince: isoTime,
        /** The zone its times are printed in: the config's `timezone` for ops. */
        timeZone,
        /** Set when state is resumed. */
        resumedAt: isoTime.nullable(),
        /** Pairs with no attempt for their silence time, of the pairs seen in the last day. */
        silentPairs: z.number().int().nonnegative(),
        seenPairs: z.number().int().nonnegative(),
        /** Incidents held open meanwhile (not resolved as "no longer observed"). */
        openIncidents: z.number().int().nonnegative(),
      })
      .strict(),
    sample: {
      detector: 'payment-health',
      state: 'silent',
      silentSince: '2026-11-22T09:51:05.000Z',
      resumedAt: null,
      silentPairs: 27,
      seenPairs: 30,
      openIncidents: 1,
    },
    variants: {
      resumed: {
        detector: 'payment-health',
        state: 'resumed',
        silentSince: '2026-11-22T09:51:05.000Z',
        resumedAt: '2026-11-22T10:20:00.000Z',
        silentPairs: 0,
        seenPairs: 30,
        openIncidents: 1,
      },
    },
  }),

  'ops-watchdog': defineKind({
    audience: 'ops',
    description:
      'The watchdog (config watchdog): a detector’s ticks stopped or the platform’s payment data lags beyond its bound, and, once it is over, that it ticks again or caught up.',
    channels: ['email'],
    variables: {
      subject: 'What is watched, as one word: ticks:<detector> or data:payment_attempts.',
      watched: '"ticks" (a detector’s scheduled runs) or "data" (the platform’s newest payment attempt).',
      state:
        '"stopped" or "recovered" (ticks), "lagging" or "caught-up" (data): the alert, and the notice that it is over.',
      detector: 'The detector whose ticks are watched, e.g. payment-health; empty for data.',
      lastTickAt:
        'When the detector’s last tick finished; empty when it never ran (then ageSeconds counts from watchingSince). Print it with local_time and timeZone. Empty for data.',
      lastOutcome:
        'How that last tick ended: evaluated, stale or refused; empty when it never ran or for data.',
      newestAt:
        'When the newest payment attempt was created; empty when the table is empty, and for ticks. Print it with local_time and timeZone.',
      ageSeconds:
        'Ticks: seconds since the last tick finished. Data: seconds the newest attempt lags the platform database’s clock. As measured by this check.',
      boundSeconds: 'The bound in seconds: the alert comes when ageSeconds goes beyond it.',
      watchingSince: 'When the watchdog first saw this subject. Print it with local_time and timeZone.',
      failingSince:
        'When the watchdog found it stopped or lagging (the alert’s time). Print it with local_time and timeZone.',
      checkedAt: 'When this check ran. Print it with local_time and timeZone.',
      timeZone: opsOpenedNotes.timeZone,
    },
    schema: z
      .object({
        subject: z.string().min(1),
        watched: z.enum(['ticks', 'data']),
        state: z.enum(['stopped', 'recovered', 'lagging', 'caught-up']),
        detector: z.string().min(1).nullable(),
        lastTickAt: isoTime.nullable(),
        lastOutcome: z.string().min(1).nullable(),
        newestAt: isoTime.nullable(),
        ageSeconds: z.number().int().nonnegative(),
        boundSeconds: z.number().int().positive(),
        watchingSince: isoTime,
        failingSince: isoTime,
        checkedAt: isoTime,
        /** The zone its times are printed in: the config's `timezone` for ops. */
        timeZone,
      })
      .strict(),
    sample: {
      subject: 'ticks:payment-health',
      watched: 'ticks',
      state: 'stopped',
      detector: 'payment-health',
      lastTickAt: '2026-11-22T09:51:05.000Z',
      lastOutcome: 'evaluated',
      newestAt: null,
      ageSeconds: 245,
      boundSeconds: 180,
      watchingSince: '2026-11-20T02:00:00.000Z',
      failingSince: '2026-11-22T09:55:10.000Z',
      checkedAt: '2026-11-22T09:55:10.000Z',
    },
    variants: {
      'ticks recovered': {
        subject: 'ticks:payment-health',
        watched: 'ticks',
        state: 'recovered',
        detector: 'payment-health',
        lastTickAt: '2026-11-22T10:10:15.000Z',
        lastOutcome: 'evaluated',
        newestAt: null,
        ageSeconds: 3,
        boundSeconds: 180,
        watchingSince: '2026-11-20T02:00:00.000Z',
        failingSince: '2026-11-22T09:55:10.000Z',
        checkedAt: '2026-11-22T10:10:18.000Z',
      },
      'never ticked': {
        subject: 'ticks:inventory',
        watched: 'ticks',
        state: 'stopped',
        detector: 'inventory',
        lastTickAt: null,
        lastOutcome: null,
        newestAt: null,
        ageSeconds: 200,
        boundSeconds: 180,
        watchingSince: '2026-11-22T09:51:50.000Z',
        failingSince: '2026-11-22T09:55:10.000Z',
        checkedAt: '2026-11-22T09:55:10.000Z',
      },
      'data lagging': {
        subject: 'data:payment_attempts',
        watched: 'data',
        state: 'lagging',
        detector: null,
        lastTickAt: null,
        lastOutcome: null,
        newestAt: '2026-11-22T09:30:00.000Z',
        ageSeconds: 1510,
        boundSeconds: 900,
        watchingSince: '2026-11-20T02:00:00.000Z',
        failingSince: '2026-11-22T09:55:10.000Z',
        checkedAt: '2026-11-22T09:55:10.000Z',
      },
      'data empty': {
        subject: 'data:payment_attempts',
        watched: 'data',
        state: 'lagging',
        detector: null,
        lastTickAt: null,
        lastOutcome: null,
        newestAt: null,
        ageSeconds: 960,
        boundSeconds: 900,
        watchingSince: '2026-11-22T09:39:10.000Z',
        failingSince: '2026-11-22T09:55:10.000Z',
        checkedAt: '2026-11-22T09:55:10.000Z',
      },
      'data caught up': {
        subject: 'data:payment_attempts',
        watched: 'data',
        state: 'caught-up',
        detector: null,
        lastTickAt: null,
        lastOutcome: null,
        newestAt: '2026-11-22T10:20:01.000Z',
        ageSeconds: 2,
        boundSeconds: 900,
        watchingSince: '2026-11-20T02:00:00.000Z',
        failingSince: '2026-11-22T09:55:10.000Z',
        checkedAt: '2026-11-22T10:20:03.000Z',
      },
    },
  }),

  'ops-alert-group': defineKind({
    audience: 'ops',
    description:
      'Ops alerts of one group (the same region, the same error code) that came within notifications.ops.groupWaitSeconds of the first, as one email listing each with its own subject and text.',
    channels: ['email'],
    variables: {
      groupKey: 'What the alerts have in common, as one word, e.g. region:CN-GD.',
      groupBy: 'The kind of thing they share, e.g. region or code; empty when the key has none.',
      groupValue: 'The shared value, e.g. CN-GD.',
      count: 'How many alerts are in this email (2 or more).',
      waitSeconds: 'How long the first alert waited for the others, in seconds.',
      alerts:
        'The alerts, each with its subject and its text as paragraphs of lines: loop over it with {% for alert in alerts %}.',
    },
    schema: z
      .object({
        /** The key the alerts share, e.g. `region:CN-GD`, `code:BANK_DECLINED`. */
        groupKey: z.string().min(1),
        /** What they share (the key before its colon: `region`, `code`); null for a key without one. */
        groupBy: z.string().min(1).nullable(),
        /** The shared value (the key after its colon; the whole key when groupBy is null). */
        groupValue: z.string().min(1),
        count: z.number().int().min(2),
        /** notifications.ops.groupWaitSeconds when the group went out. */
        waitSeconds: z.number().int().nonnegative(),
        /** Each alert as its own template rendered it: its subject, and its text's paragraphs, line by line. */
        alerts: z
          .array(
            z
              .object({ subject: z.string().min(1), paragraphs: z.array(z.array(z.string().min(1)).min(1)) })
              .strict(),
          )
          .min(2),
      })
      .strict(),
    sample: {
      groupKey: 'region:CN-GD',
      groupBy: 'region',
      groupValue: 'CN-GD',
      count: 3,
      waitSeconds: 30,
      alerts: [
        {
          subject: '[forewarn] OPENED failures on wechat_pay in CN-GD: 117/117 bad (100%, normally 3%)',
          paragraphs: [
            [
              'Incident 1842 opened by payment-health: failed and timed-out payments on 微信支付 (wechat_pay) in CN-GD.',
            ],
            ['Opened at: 2026-11-22T09:51:05.000Z, Nov 22, 17:51 (China Standard Time)'],
            ['Dashboard:', 'https://ops.example.com/forewarn/incidents/1842'],
          ],
        },
        {
          subject: '[forewarn] OPENED failures on alipay in CN-GD: 96/101 bad (95%, normally 2%)',
          paragraphs: [
            [
              'Incident 1843 opened by payment-health: failed and timed-out payments on 支付宝 (alipay) in CN-GD.',
            ],
          ],
        },
        {
          subject: '[forewarn] OPENED slow on unionpay in CN-GD: 41/117 slow (35%, normally 1%)',
          paragraphs: [
            ['Incident 1844 opened by payment-health: slow confirmations on 云闪付 (unionpay) in CN-GD.'],
          ],
        },
      ],
    },
    variants: {
      'an error code, no wait': {
        groupKey: 'code:BANK_DECLINED',
        groupBy: 'code',
        groupValue: 'BANK_DECLINED',
        count: 2,
        waitSeconds: 0,
        alerts: [
          {
            subject: '[forewarn] BANK_DECLINED: 12 in 7 days',
            paragraphs: [['BANK_DECLINED reached 12 in 7 days.']],
          },
          { subject: '[forewarn] BANK_DECLINED surging', paragraphs: [] },
        ],
      },
      'a key without a colon': {
        groupKey: 'nightly-batch',
        groupBy: null,
        groupValue: 'nightly-batch',
        count: 2,
        waitSeconds: 120,
        alerts: [
          { subject: 'first', paragraphs: [['one', 'two'], ['three']] },
          { subject: 'second', paragraphs: [] },
        ],
      },
    },
  }),
  'ops-error-spike': defineKind({
    audience: 'ops',
    description:
      'An error code spiked: a normally rare code reached its count in the rolling window, or a code’s rate jumped well above its own baseline.',
    channels: ['email'],
    variables: {
      incidentId: opsOpenedNotes.incidentId,
      code: 'The error code that spiked, e.g. RISK_REJECTED_3DS (from the platform or the payment gateway).',
      rule: 'Which rule fired: "count" (a rare code appeared many times) or "surge" (a code’s rate jumped).',
      countNow: 'How many times it occurred in the rule’s window now.',
      countBefore: 'How many it usually has in such a window (may have decimals).',
      windowMinutes: 'The window’s length in minutes: 10080 is 7 days, 60 is an hour.',
      openedAt: 'When it was found. Print it with local_time and timeZone.',
      timeZone: opsOpenedNotes.timeZone,
      topChannels: 'The channels most affected, each with channel and count (a list, may be empty).',
      topRegions: 'The regions most affected, each with region and count (a list, may be empty).',
      exampleAttemptIds: 'Ids of recent payment attempts with the code, newest first (a list).',
      dashboardUrl: opsOpenedNotes.dashboardUrl,
    },
    schema: opsErrorSpike,
    sample: opsErrorSpikeSample,
    variants: {
      'surge, one place, no dashboard': {
        ...opsErrorSpikeSample,
        code: 'GATEWAY_TIMEOUT',
        rule: 'surge',
        countNow: 412,
        countBefore: 31.5,
        windowMinutes: 60,
        topChannels: [{ channel: 'wechat_pay', count: 412 }],
        topRegions: [{ region: 'CN-ZJ', count: 412 }],
        exampleAttemptIds: ['90000412'],
        dashboardUrl: null,
      },
      'nothing listed, an odd window': {
        ...opsErrorSpikeSample,
        countBefore: 0,
        windowMinutes: 90,
        topChannels: [],
        topRegions: [],
        exampleAttemptIds: [],
      },
    },
  }),
  'restock-alert': defineKind({
    audience: 'users',
    description:
      'A product the user asked to be told about is back in stock: how many are available, where to buy it, and how to stop these alerts. It answers the user’s own request (category requested).',
    channels: ['email', 'inapp'],
    variables: {
      productId: 'The product’s technical id, e.g. gc-steam-100.',
      productName: 'The product’s name, e.g. Steam 充值卡 100 元 (from the platform).',
      available: 'How many units can be bought now.',
      wave: '1 for the first alert about this restock, 2, 3, ... for later ones while stock lasts.',
      restockedAt: 'When it came back in stock. Print it with local_time and timeZone.',
      timeZone: userLinks.timeZone,
      productUrl: 'The link to the product’s page.',
      stopUrl: 'A personal link that stops restock alerts for this product.',
      preferencesUrl: userLinks.preferencesUrl,
      unsubscribeUrl: userLinks.unsubscribeUrl,
    },
    schema: z
      .object({
        productId: z.string().min(1),
        /** Platform data: the product's name. */
        productName: displayName,
        /** Units available when the wave went out (stock minus what pending orders take). */
        available: z.number().int().nonnegative(),
        /** 1 for the first wave, 2, 3, ... for later ones (sent while stock remains). */
        wave: z.number().int().positive(),
        restockedAt: isoTime,
        timeZone,
        /** The product's page. */
        productUrl: webUrl,
        /** Signed link: stop restock alerts for this product. */
        stopUrl: webUrl,
        /** Signed link to the user's notification preferences. */
        preferencesUrl: webUrl,
        /**
         * Email only (null in-app): signed link that stops this category by email at once
         * (List-Unsubscribe too; lib/messages/unsubscribe.ts).
         */
        unsubscribeUrl: webUrl.nullable().default(null),
      })
      .strict(),
    sample: {
      productId: 'gc-steam-100',
      productName: 'Steam 充值卡 100 元',
      available: 80,
      wave: 1,
      restockedAt: '2026-11-22T09:30:00.000Z',
      timeZone: 'Asia/Shanghai',
      productUrl: 'https://shop.example.com/products/gc-steam-100',
      stopUrl: 'https://forewarn.example.com/restock/stop?product=gc-steam-100&token=sample-token',
      preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      unsubscribeUrl: 'https://forewarn.example.com/unsubscribe?token=sample-token',
    },
    variants: {
      'later wave, one left': {
        productId: 'topup-genshin-6480',
        productName: 'Genshin Impact 6480 Genesis Crystals',
        available: 1,
        wave: 3,
        restockedAt: '2026-11-22T23:59:59+08:00',
        timeZone: 'America/Los_Angeles',
        productUrl: 'https://shop.example.com/products/topup-genshin-6480',
        stopUrl: 'https://forewarn.example.com/restock/stop?product=topup-genshin-6480&token=sample-token',
        preferencesUrl: 'https://shop.example.com/notifications?token=sample-token',
      },
    },
  }),
  'security-checkup': defineKind({
    audience: 'users',
    description:
      'The first security check-up of an inactivity period (whichever step the user reached first): no activity since a date, so review recent sign-ins and devices, change a password used elsewhere, turn on two-step verification, open the site or app yourself; we never ask for a password or code. A check-up, not an order; no links but the platform’s security page.',
    channels: ['email', 'inapp'],
    variables: securityCheckupNotes,
    schema: securityCheckup,
    sample: securityCheckupSample,
    variants: securityCheckupVariants,
  }),
  'security-checkup-reminder': defineKind({
    audience: 'users',
    description:
      'A later security check-up in the same inactivity period (e.g. at 30 days after one at 3): it mentions the earlier note calmly and repeats the checklist, shorter.',
    channels: ['email', 'inapp'],
    variables: {
      ...securityCheckupNotes,
      previousStepDays:
        'The step of the earlier check-up in this same quiet period, e.g. 3 when this one is at 30.',
    },
    schema: securityCheckupReminder,
    sample: securityCheckupReminderSample,
    variants: {
      'no security page': {
        ...securityCheckupReminderSample,
        securityUrl: null,
      },
      'never signed in': { ...securityCheckupReminderSample, neverSignedIn: true },
      'an English date, another zone': {
        ...securityCheckupReminderSample,
        siteName: 'Example Card Shop',
        lastActiveDate: '3 November 2026',
        timezone: 'America/Los_Angeles',
        idleDays: 30,
        stepDays: 30,
        previousStepDays: 7,
      },
      'years idle, never signed in, no security page': {
        ...securityCheckupReminderSample,
        lastActiveDate: '2023年12月3日',
        neverSignedIn: true,
        idleDays: 1096,
        stepDays: 365,
        previousStepDays: 90,
        securityUrl: null,
      },
    },
  }),
} as const;

export type TemplateKind = keyof typeof templateKinds;
/** The data a kind's templates are rendered with, after validation. */
export type TemplateData<K extends TemplateKind> = z.output<(typeof templateKinds)[K]['schema']>;
/** The data a caller passes (before validation; the same as TemplateData for these schemas). */
export type TemplateInput<K extends TemplateKind> = z.input<(typeof templateKinds)[K]['schema']>;
export type ChannelOf<K extends TemplateKind> = (typeof templateKinds)[K]['channels'][number];

export const templateKindNames = Object.keys(templateKinds) as TemplateKind[];

export function isTemplateKind(name: string): name is TemplateKind {
  return Object.hasOwn(templateKinds, name);
}
