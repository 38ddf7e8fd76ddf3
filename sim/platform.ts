// The reference trading platform the simulator imitates: its payment channels and regions, the
// normal traffic of each (channel, region) pair, the day/night cycle, and a deterministic user base.
import type { PaymentChannel } from '../detectors/payment-health/types.ts';
import { mulberry32, pickWeighted } from './random.ts';

/** A payment channel with the error codes its gateway returns. */
export interface SimChannel extends PaymentChannel {
  /** The payer's side said no (balance, limits, wrong PIN, cancelled): part of normal traffic. */
  declineCodes: readonly string[];
  /** The channel itself broke: rare in normal traffic, every failure of an outage. */
  systemCodes: readonly string[];
}

export interface SimRegion {
  /** ISO 3166-2 code, as in users.region and payment_attempts.region. */
  code: string;
  name: string;
  timezone: string;
}

/** Confirmation latency of succeeded attempts: log-normal body plus a rare log-uniform tail. */
export interface LatencyProfile {
  medianMs: number;
  /** Standard deviation of ln(latency). */
  sigma: number;
  /** Share of succeeded attempts that land in the tail. */
  tailShare: number;
  tailMinMs: number;
  tailMaxMs: number;
}

/** The normal behaviour of one (channel, region) pair. */
export interface TrafficPair {
  channel: string;
  region: string;
  /** Mean attempts per minute at the busiest time of day. */
  peakPerMinute: number;
  /** Share of attempts that fail or time out on a normal day. */
  failureRate: number;
  /** Share of attempts that are never confirmed and stay `pending` forever. */
  pendingRate: number;
  latency: LatencyProfile;
}

/** Traffic relative to the peak, by local hour: knots at each full hour, smoothly joined. */
export interface DailyCycle {
  /** Local time's offset from UTC; a fixed offset is exact for China, which has no DST. */
  utcOffsetMinutes: number;
  /** 24 factors in (0, 1], one per local hour h, the traffic at h:00 relative to the peak. */
  hourly: readonly number[];
}

export interface Platform {
  channels: readonly SimChannel[];
  regions: readonly SimRegion[];
  pairs: readonly TrafficPair[];
  dailyCycle: DailyCycle;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const REGIONS: readonly SimRegion[] = [
  { code: 'CN-GD', name: '广东', timezone: 'Asia/Shanghai' },
  { code: 'CN-BJ', name: '北京', timezone: 'Asia/Shanghai' },
  { code: 'CN-SH', name: '上海', timezone: 'Asia/Shanghai' },
  { code: 'CN-ZJ', name: '浙江', timezone: 'Asia/Shanghai' },
  { code: 'CN-SC', name: '四川', timezone: 'Asia/Shanghai' },
];

// Every channel also sees the platform's own codes for a cancelled or risk-rejected payment.
const PLATFORM_DECLINES = ['PAY_CANCELLED_BY_USER', 'PLATFORM_RISK_REJECTED'];

const CHANNELS: readonly SimChannel[] = [
  {
    id: 'alipay',
    displayName: '支付宝',
    regions: ['*'],
    enabled: true,
    priority: 10,
    declineCodes: [
      'ACQ.BUYER_BALANCE_NOT_ENOUGH',
      'ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR',
      'ACQ.PAYMENT_AUTH_CODE_INVALID',
      ...PLATFORM_DECLINES,
    ],
    systemCodes: ['ACQ.SYSTEM_ERROR', 'ISP.UNKNOWN_ERROR'],
  },
  {
    id: 'wechat_pay',
    displayName: '微信支付',
    regions: ['*'],
    enabled: true,
    priority: 20,
    declineCodes: ['NOTENOUGH', 'PAYERROR', 'AUTHCODEEXPIRE', ...PLATFORM_DECLINES],
    systemCodes: ['SYSTEMERROR', 'BANKERROR'],
  },
  {
    id: 'unionpay',
    displayName: '银联',
    regions: ['*'],
    enabled: true,
    priority: 30,
    // ISO 8583 response codes: 51 insufficient funds, 55 wrong PIN, 61 over limit.
    declineCodes: ['51', '55', '61', ...PLATFORM_DECLINES],
    // 91 issuer unavailable, 96 system malfunction.
    systemCodes: ['91', '96'],
  },
  {
    id: 'bank_card',
    displayName: '银行卡',
    regions: ['CN-GD', 'CN-BJ', 'CN-SH', 'CN-ZJ', 'CN-SC'],
    enabled: true,
    priority: 40,
    declineCodes: [
      'INSUFFICIENT_FUNDS',
      'CARD_DECLINED',
      'CARD_EXPIRED',
      'SMS_CODE_INVALID',
      ...PLATFORM_DECLINES,
    ],
    systemCodes: ['BANK_SYSTEM_ERROR', 'ISSUER_UNAVAILABLE'],
  },
  {
    id: 'jd_pay',
    displayName: '京东支付',
    regions: ['CN-BJ', 'CN-SH', 'CN-GD', 'CN-ZJ'],
    enabled: true,
    priority: 50,
    declineCodes: ['JD_BALANCE_INSUFFICIENT', 'JD_RISK_REJECTED', ...PLATFORM_DECLINES],
    systemCodes: ['JD_SYSTEM_ERROR'],
  },
  {
    id: 'qq_wallet',
    displayName: 'QQ钱包',
    regions: ['CN-GD', 'CN-SH', 'CN-BJ', 'CN-SC'],
    enabled: true,
    priority: 60,
    declineCodes: ['QQ_BALANCE_NOT_ENOUGH', 'QQ_PAY_CANCELLED', ...PLATFORM_DECLINES],
    systemCodes: ['QQ_SYSTEM_ERROR'],
  },
  {
    // Offered in CN-GD without traffic there, so backups that are offered but unproven exist.
    id: 'douyin_pay',
    displayName: '抖音支付',
    regions: ['CN-BJ', 'CN-SH', 'CN-GD'],
    enabled: true,
    priority: 70,
    declineCodes: ['DY_BALANCE_NOT_ENOUGH', ...PLATFORM_DECLINES],
    systemCodes: ['DY_SYSTEM_ERROR'],
  },
  {
    // Offered everywhere but switched off: it must never be suggested as a backup.
    id: 'paypal',
    displayName: 'PayPal',
    regions: ['*'],
    enabled: false,
    priority: 90,
    declineCodes: ['INSTRUMENT_DECLINED', ...PLATFORM_DECLINES],
    systemCodes: ['INTERNAL_SERVICE_ERROR'],
  },
];

// Gateways that confirm through the bank's own network are slower.
const MEDIAN_LATENCY_MS: Readonly<Record<string, number>> = {
  alipay: 1_200,
  wechat_pay: 1_500,
  unionpay: 3_500,
  bank_card: 4_000,
  jd_pay: 2_000,
  qq_wallet: 2_500,
  douyin_pay: 1_800,
};

// [channel, region, peak attempts per minute, normal failure share]. A few big pairs carry most
// of the volume, most are medium, and a few see about one attempt a minute, where a detector
// has to stay quiet for lack of evidence. The sum is tuned to ~1.4 million attempts a day.
const TRAFFIC: readonly (readonly [string, string, number, number])[] = [
  ['alipay', 'CN-GD', 400, 0.02],
  ['alipay', 'CN-ZJ', 300, 0.02],
  ['alipay', 'CN-SH', 55, 0.022],
  ['alipay', 'CN-BJ', 50, 0.021],
  ['alipay', 'CN-SC', 40, 0.025],
  ['wechat_pay', 'CN-GD', 320, 0.028],
  ['wechat_pay', 'CN-ZJ', 45, 0.03],
  ['wechat_pay', 'CN-SH', 50, 0.027],
  ['wechat_pay', 'CN-BJ', 45, 0.026],
  ['wechat_pay', 'CN-SC', 60, 0.03],
  ['unionpay', 'CN-GD', 30, 0.05],
  ['unionpay', 'CN-BJ', 20, 0.045],
  ['unionpay', 'CN-SH', 25, 0.05],
  ['unionpay', 'CN-ZJ', 15, 0.055],
  ['unionpay', 'CN-SC', 10, 0.06],
  ['bank_card', 'CN-GD', 35, 0.1],
  ['bank_card', 'CN-BJ', 15, 0.09],
  ['bank_card', 'CN-SH', 20, 0.1],
  ['bank_card', 'CN-ZJ', 12, 0.11],
  ['bank_card', 'CN-SC', 10, 0.12],
  ['jd_pay', 'CN-BJ', 25, 0.04],
  ['jd_pay', 'CN-SH', 12, 0.045],
  ['jd_pay', 'CN-GD', 10, 0.05],
  ['jd_pay', 'CN-ZJ', 1, 0.05],
  ['qq_wallet', 'CN-GD', 12, 0.06],
  ['qq_wallet', 'CN-SH', 2, 0.055],
  ['qq_wallet', 'CN-BJ', 1, 0.06],
  ['qq_wallet', 'CN-SC', 1, 0.06],
  ['douyin_pay', 'CN-BJ', 1, 0.05],
  ['douyin_pay', 'CN-SH', 1.5, 0.045],
];

// Beijing time: quietest 04:00-05:00 at ~22% of peak, busiest 20:00-21:00 after work and dinner.
const HOURLY: readonly number[] = [
  0.6, 0.44, 0.32, 0.25, 0.22, 0.22, 0.27, 0.36, 0.47, 0.56, 0.62, 0.66, 0.7, 0.68, 0.66, 0.66, 0.68, 0.72,
  0.8, 0.9, 1, 1, 0.9, 0.76,
];

/** The platform every demo, backtest and simulation test runs against. */
export function referencePlatform(): Platform {
  const pairs = TRAFFIC.map(([channel, region, peakPerMinute, failureRate]): TrafficPair => ({
    channel,
    region,
    peakPerMinute,
    failureRate,
    // Rare enough to stay below the configured 1% normal slow share, common enough to exist.
    pendingRate: 0.002,
    latency: {
      medianMs: MEDIAN_LATENCY_MS[channel] ?? 2_000,
      sigma: 0.5,
      tailShare: 0.004,
      tailMinMs: 8_000,
      tailMaxMs: 60_000,
    },
  }));
  return {
    channels: CHANNELS.map((c) => ({ ...c })),
    regions: REGIONS.map((r) => ({ ...r })),
    pairs,
    dailyCycle: { utcOffsetMinutes: 8 * 60, hourly: [...HOURLY] },
  };
}

// [channel, peak attempts per minute, normal failure share] of the wide region: two busy
// channels, three medium ones and a quiet one of about one attempt a minute.
const WIDE_REGION = { code: 'CN-HB', name: '湖北', timezone: 'Asia/Shanghai' } as const;
const WIDE_TRAFFIC: readonly (readonly [string, number, number])[] = [
  ['alipay', 350, 0.02],
  ['wechat_pay', 280, 0.028],
  ['unionpay', 25, 0.05],
  ['bank_card', 20, 0.1],
  ['jd_pay', 8, 0.045],
  ['qq_wallet', 1.5, 0.06],
];

/**
 * The reference platform plus one region, Hubei, served by six channels of mixed volume, for
 * scenarios where a whole region goes down. Douyin Pay is offered there without traffic, so
 * there is a backup that is offered but unproven. The reference pairs keep their order, so their
 * traffic is the reference platform's for the same seed.
 */
export function wideRegionPlatform(): Platform {
  const base = referencePlatform();
  const withRegion = ['bank_card', 'jd_pay', 'qq_wallet', 'douyin_pay'];
  const channels = base.channels.map((c) =>
    withRegion.includes(c.id) ? { ...c, regions: [...c.regions, WIDE_REGION.code] } : c,
  );
  const wide = WIDE_TRAFFIC.map(([channel, peakPerMinute, failureRate]): TrafficPair => {
    const like = base.pairs.find((p) => p.channel === channel)!;
    return { ...like, region: WIDE_REGION.code, peakPerMinute, failureRate, latency: { ...like.latency } };
  });
  return {
    channels,
    regions: [...base.regions, { ...WIDE_REGION }],
    pairs: [...base.pairs, ...wide],
    dailyCycle: base.dailyCycle,
  };
}

/** Traffic at `ms` relative to the peak, in (0, 1]. */
export function trafficFactor(cycle: DailyCycle, ms: number): number {
  const local = ms + cycle.utcOffsetMinutes * MINUTE_MS;
  const hours = (((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
  const hour = Math.floor(hours);
  const a = cycle.hourly[hour] ?? 1;
  const b = cycle.hourly[(hour + 1) % 24] ?? 1;
  // Cosine easing keeps the curve smooth at the knots and keeps each hour's mean at (a + b) / 2.
  return a + ((b - a) * (1 - Math.cos(Math.PI * (hours - hour)))) / 2;
}

/** The mean number of attempts the simulator produces in [fromMs, toMs), over all pairs. */
export function expectedAttempts(platform: Platform, fromMs: number, toMs: number, rateScale = 1): number {
  let peakPerMinute = 0;
  for (const pair of platform.pairs) peakPerMinute += pair.peakPerMinute;
  let total = 0;
  // Midpoint rule per minute: the cycle changes over hours, so this is exact to well under 0.1%.
  for (let t = fromMs; t < toMs; t += MINUTE_MS) {
    const step = Math.min(MINUTE_MS, toMs - t);
    total += trafficFactor(platform.dailyCycle, t + step / 2) * (step / MINUTE_MS);
  }
  return total * peakPerMinute * rateScale;
}

export type UserStatus = 'active' | 'disabled' | 'deleted';

/** A row of the platform's users table; times are epoch milliseconds. */
export interface SimUser {
  id: string;
  email: string | null;
  locale: string;
  region: string;
  timezone: string;
  status: UserStatus;
  lastActiveAt: number | null;
  createdAt: number;
}

export interface GenerateUsersOptions {
  /** Every user signed up before this; defaults to a fixed date so output never depends on the clock. */
  now?: number;
  /** Users are spread over the platform's regions in proportion to their traffic. */
  platform?: Platform;
}

/** The reference `now` of generated users: 2025-06-01T00:00:00Z. */
export const USERS_REFERENCE_NOW = Date.UTC(2025, 5, 1);

/** How many users the traffic generator draws ids from when it is given none. */
export const DEFAULT_USER_COUNT = 100_000;

/** The id of the `index`-th generated user (0-based), e.g. `u0000001`. */
export function userIdFor(index: number): string {
  return `u${String(index + 1).padStart(7, '0')}`;
}

// Mostly Chinese; a few English speakers; and tags the templates do not have, which must fall
// back to zh-CN.
const LOCALES = ['zh-CN', 'en', 'zh-TW', 'en-US', 'ja', 'fr', 'de'];
const LOCALE_WEIGHTS = [0.86, 0.08, 0.02, 0.015, 0.01, 0.01, 0.005];

// A few users abroad, whose quiet hours are not Beijing's.
const ABROAD_TIMEZONES = ['America/Los_Angeles', 'Europe/London', 'Australia/Sydney', 'Asia/Tokyo'];
const ABROAD_SHARE = 0.02;

const STATUSES: UserStatus[] = ['active', 'disabled', 'deleted'];
const STATUS_WEIGHTS = [0.97, 0.02, 0.01];

// Reserved example domains (RFC 2606 and look-alikes): a demo can never mail a real person.
const EMAIL_DOMAINS = ['example.com', 'example.cn', 'example.net'];
const NO_EMAIL_SHARE = 0.15;
const NEVER_ACTIVE_SHARE = 0.04;
const SIGN_UP_SPAN_MS = 3 * 365 * DAY_MS;

/** `count` users with ids `userIdFor(0)` to `userIdFor(count - 1)`; the same seed gives the same users. */
export function generateUsers(count: number, seed: number, options: GenerateUsersOptions = {}): SimUser[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`generateUsers: count: expected a non-negative integer, got ${count}`);
  }
  const now = options.now ?? USERS_REFERENCE_NOW;
  const platform = options.platform ?? referencePlatform();
  const regions = platform.regions;
  const regionWeights = regions.map((r) =>
    platform.pairs.filter((p) => p.region === r.code).reduce((sum, p) => sum + p.peakPerMinute, 0),
  );
  const random = mulberry32(seed);
  const users: SimUser[] = [];
  for (let i = 0; i < count; i++) {
    const id = userIdFor(i);
    const region = pickWeighted(regions, regionWeights, random());
    const uEmail = random();
    const uDomain = random();
    const locale = pickWeighted(LOCALES, LOCALE_WEIGHTS, random());
    const uAbroad = random();
    const uZone = random();
    const status = pickWeighted(STATUSES, STATUS_WEIGHTS, random());
    const createdAt = Math.floor(now - random() * SIGN_UP_SPAN_MS);
    const uActive = random();
    const uRecency = random();
    const domain = EMAIL_DOMAINS[Math.floor(uDomain * EMAIL_DOMAINS.length)] ?? 'example.com';
    users.push({
      id,
      email: uEmail < NO_EMAIL_SHARE ? null : `${id}@${domain}`,
      locale,
      region: region.code,
      timezone:
        uAbroad < ABROAD_SHARE
          ? (ABROAD_TIMEZONES[Math.floor(uZone * ABROAD_TIMEZONES.length)] ?? region.timezone)
          : region.timezone,
      status,
      // Cubing skews toward the recent past: most users were active lately, a few long ago.
      lastActiveAt: uActive < NEVER_ACTIVE_SHARE ? null : Math.floor(now - uRecency ** 3 * (now - createdAt)),
      createdAt,
    });
  }
  return users;
}
