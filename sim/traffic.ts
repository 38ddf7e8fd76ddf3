// Deterministic payment-attempt traffic for the reference platform: a Poisson process per
// (channel, region) pair that follows the day/night cycle, with scripted incidents (scenarios).
import { DEFAULT_USER_COUNT, trafficFactor, userIdFor } from './platform.ts';
import type { DailyCycle, Platform, SimChannel, TrafficPair } from './platform.ts';
import { deriveSeed, mulberry32, normalFrom } from './random.ts';
import type { Random } from './random.ts';

export type AttemptStatus = 'succeeded' | 'failed' | 'pending' | 'timeout';

/** One row of payment_attempts; times are epoch milliseconds. */
export interface SimAttempt {
  id: number;
  userId: string;
  channelId: string;
  region: string;
  status: AttemptStatus;
  errorCode: string | null;
  /** Time to confirmation; set only for succeeded attempts. */
  latencyMs: number | null;
  createdAt: number;
  /** When it reached its final status; null only for attempts that stay pending. */
  finishedAt: number | null;
}

export type ScenarioEffect =
  /**
   * Every attempt fails, 35% of them as timeouts; with `share`, that share of attempts fails
   * (normal failures included) and the rest behave normally; `timeoutShare` is the share of the
   * outage's failures that time out (30 s later) rather than fail at once.
   */
  | { type: 'outage'; share?: number; timeoutShare?: number }
  /** The pair's failure share rises to `rate` (normal failures included). */
  | { type: 'failureRate'; rate: number }
  /**
   * The pair's failure share moves linearly from `fromRate` at the scenario's `from` to `toRate`
   * at its `to` (normal failures included): a slow slide rather than a step.
   */
  | { type: 'slide'; fromRate: number; toRate: number }
  /** Succeeded attempts take about `latencyMs` (±25%) to confirm, or longer. */
  | { type: 'slow'; latencyMs: number }
  /** This share of attempts is never confirmed and stays pending. */
  | { type: 'stuckPending'; share: number };

/** An incident on one pair for attempts created in [from, to); region '*' means all of the channel's. */
export interface Scenario {
  channel: string;
  region: string;
  from: number;
  to: number;
  effect: ScenarioEffect;
}

/** A user the traffic may be attributed to; attempts from a region pick users of that region. */
export interface UserRef {
  id: string;
  region: string;
}

export interface TrafficOptions {
  platform: Platform;
  /** Attempts are created in [from, to), epoch milliseconds. */
  from: number;
  to: number;
  seed: number;
  /** Id of the first attempt; ids then count up by one. Default 1. */
  firstId?: number;
  scenarios?: readonly Scenario[];
  /** Multiplies every pair's rate; default 1 (about 1.4 million attempts a day). */
  rateScale?: number;
  /** Who pays: plain ids are drawn uniformly; users with regions are drawn from the attempt's region. */
  users?: readonly string[] | readonly UserRef[];
}

// A normal failure is mostly the payer's side (declines, cancellations); a few are the channel's
// own errors, and a few are the platform giving up waiting.
const NORMAL_TIMEOUT_SHARE = 0.05;
const NORMAL_SYSTEM_SHARE = 0.1;
const NORMAL_TIMEOUT_CODE = 'PAY_CONFIRM_TIMEOUT';
// During an incident the gateway often does not answer at all.
const INCIDENT_TIMEOUT_SHARE = 0.35;
const INCIDENT_TIMEOUT_CODE = 'GATEWAY_TIMEOUT';
const SLOW_JITTER = 0.25;
// When the platform learns the outcome: a gateway declines or errors within a few seconds, and
// the platform gives up on an unanswered attempt after a fixed wait.
const FAILED_AFTER_MIN_MS = 1_000;
const FAILED_AFTER_MAX_MS = 3_000;
const TIMEOUT_AFTER_MS = 30_000;

const MINUTE_MS = 60_000;

/** The incident effects active on one pair at one moment, combined. */
interface ActiveEffects {
  /** Share of attempts an outage fails (0 when none is active), and how many of those time out. */
  outageShare: number;
  outageTimeoutShare: number;
  failureRate: number;
  stuckShare: number;
  slowMs: number;
}

interface PairStream {
  index: number;
  pair: TrafficPair;
  channel: SimChannel;
  /** Rate at the peak, per millisecond; arrivals are thinned down to the cycle's rate. */
  peakRatePerMs: number;
  /** Continuous time of the next arrival; Infinity once the stream has passed `to`. */
  nextAt: number;
  arrivals: Random;
  outcomes: Random;
  /** Ids of the users who may pay on this pair. */
  users: readonly string[];
  scenarios: readonly Scenario[];
}

/**
 * Attempts created in [from, to), in created_at order (ties in the same millisecond keep arrival
 * order), with ids counting up from `firstId`. The same options always yield the same attempts.
 *
 * Each pair draws arrivals and outcomes from its own streams, and every attempt consumes the same
 * number of draws, so adding a scenario changes the outcomes inside its window and nothing else.
 */
export function generateAttempts(options: TrafficOptions): Generator<SimAttempt, void, undefined> {
  const { platform, from, to, seed } = options;
  const rateScale = options.rateScale ?? 1;
  validateOptions(options, rateScale);
  const scenarios = options.scenarios ?? [];
  scenarios.forEach((s, i) => validateScenario(platform, s, i));

  const channels = new Map(platform.channels.map((c) => [c.id, c]));
  const users = userPools(options.users);
  const cycle = platform.dailyCycle;

  const heap: PairStream[] = platform.pairs.map((pair, index) => {
    const channel = channels.get(pair.channel);
    if (!channel) {
      throw new RangeError(
        `platform.pairs[${index}].channel: expected a channel of the platform, got ${pair.channel}`,
      );
    }
    const stream: PairStream = {
      index,
      pair,
      channel,
      peakRatePerMs: (pair.peakPerMinute * rateScale) / MINUTE_MS,
      nextAt: from,
      arrivals: mulberry32(deriveSeed(seed, index, 0)),
      outcomes: mulberry32(deriveSeed(seed, index, 1)),
      // A region without users of its own borrows everyone rather than failing.
      users: users.byRegion.get(pair.region) ?? users.everyone,
      scenarios: scenarios.filter(
        (s) => s.channel === pair.channel && (s.region === pair.region || s.region === '*'),
      ),
    };
    advance(stream, cycle, to);
    return stream;
  });
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(heap, i);
  // Validation and setup above run now, so bad options throw at the call, not at the first next().
  return emit(heap, cycle, to, options.firstId ?? 1);
}

function* emit(
  heap: PairStream[],
  cycle: DailyCycle,
  to: number,
  firstId: number,
): Generator<SimAttempt, void, undefined> {
  let id = firstId;
  for (;;) {
    const next = heap[0];
    if (next === undefined || next.nextAt === Infinity) return;
    yield attemptOf(next, id++, Math.floor(next.nextAt));
    advance(next, cycle, to);
    siftDown(heap, 0);
  }
}

/** Moves a stream to its next arrival: a homogeneous process at the peak rate, thinned by the cycle. */
function advance(stream: PairStream, cycle: DailyCycle, to: number): void {
  let t = stream.nextAt;
  if (stream.peakRatePerMs <= 0) {
    stream.nextAt = Infinity;
    return;
  }
  for (;;) {
    t += -Math.log(1 - stream.arrivals()) / stream.peakRatePerMs;
    if (t >= to) {
      stream.nextAt = Infinity;
      return;
    }
    if (stream.arrivals() < trafficFactor(cycle, t)) {
      stream.nextAt = t;
      return;
    }
  }
}

function attemptOf(stream: PairStream, id: number, createdAt: number): SimAttempt {
  const { pair, channel } = stream;
  const r = stream.outcomes;
  // Always the same nine draws, whatever the outcome: see generateAttempts. A stuck (pending)
  // attempt never finishes; the others finish when the platform learns their outcome.
  const uUser = r();
  const uIncident = r();
  const uStatus = r();
  const uCode = r();
  const uLatency1 = r();
  const uLatency2 = r();
  const uTail = r();
  const uTailSize = r();
  const uJitter = r();

  const userId = stream.users[Math.floor(uUser * stream.users.length)] ?? userIdFor(0);
  const effects = activeEffects(stream.scenarios, createdAt);
  // Extra failures on top of the normal ones, sized so that the total share is the scenario's
  // rate; a full outage fails every attempt.
  const outageExtra = effects.outageShare >= 1 ? 1 : extraFailures(pair, effects.outageShare);
  const extra = Math.max(outageExtra, extraFailures(pair, effects.failureRate));
  let incidentFailure = false;
  let stuck = false;
  let timeoutShare = INCIDENT_TIMEOUT_SHARE;
  if (uIncident < extra) {
    incidentFailure = true;
    if (uIncident < outageExtra) timeoutShare = effects.outageTimeoutShare;
  } else if (uIncident < extra + (1 - extra) * effects.stuckShare) stuck = true;

  let status: AttemptStatus;
  let errorCode: string | null = null;
  let latencyMs: number | null = null;
  let finishedAt: number | null = null;
  if (incidentFailure) {
    if (uCode < timeoutShare) {
      status = 'timeout';
      errorCode = INCIDENT_TIMEOUT_CODE;
    } else {
      status = 'failed';
      errorCode = pick(channel.systemCodes, (uCode - timeoutShare) / (1 - timeoutShare));
    }
  } else if (stuck || uStatus < pair.pendingRate) {
    status = 'pending';
  } else if (uStatus < pair.pendingRate + pair.failureRate) {
    if (uCode < NORMAL_TIMEOUT_SHARE) {
      status = 'timeout';
      errorCode = NORMAL_TIMEOUT_CODE;
    } else {
      status = 'failed';
      const u = (uCode - NORMAL_TIMEOUT_SHARE) / (1 - NORMAL_TIMEOUT_SHARE);
      errorCode =
        u < NORMAL_SYSTEM_SHARE
          ? pick(channel.systemCodes, u / NORMAL_SYSTEM_SHARE)
          : pick(channel.declineCodes, (u - NORMAL_SYSTEM_SHARE) / (1 - NORMAL_SYSTEM_SHARE));
    }
  } else {
    status = 'succeeded';
    const profile = pair.latency;
    let latency = profile.medianMs * Math.exp(profile.sigma * normalFrom(uLatency1, uLatency2));
    if (uTail < profile.tailShare) {
      latency = Math.max(latency, profile.tailMinMs * (profile.tailMaxMs / profile.tailMinMs) ** uTailSize);
    }
    if (effects.slowMs > 0) {
      latency = Math.max(latency, effects.slowMs * (1 - SLOW_JITTER + 2 * SLOW_JITTER * uJitter));
    }
    latencyMs = Math.max(1, Math.round(latency));
    finishedAt = createdAt + latencyMs;
  }
  if (status === 'timeout') finishedAt = createdAt + TIMEOUT_AFTER_MS;
  if (status === 'failed') {
    // uJitter only shapes successes, so failures reuse it and the number of draws stays the same.
    finishedAt =
      createdAt + FAILED_AFTER_MIN_MS + Math.round(uJitter * (FAILED_AFTER_MAX_MS - FAILED_AFTER_MIN_MS));
  }
  return {
    id,
    userId,
    channelId: pair.channel,
    region: pair.region,
    status,
    errorCode,
    latencyMs,
    createdAt,
    finishedAt,
  };
}

/**
 * `a` as the platform's row read at `t`: null before it was created, final from `finishedAt` on,
 * and before that `pending` with no error code, latency or finish time (rows are written as
 * `pending` and updated in place when the outcome is known).
 */
export function attemptAsOf(a: SimAttempt, t: number): SimAttempt | null {
  if (t < a.createdAt) return null;
  const finishedAt = finishedAtOf(a);
  if (finishedAt === null ? a.status === 'pending' : t >= finishedAt) return a;
  return { ...a, status: 'pending', errorCode: null, latencyMs: null, finishedAt: null };
}

/**
 * When `a` reached its final status, as the platform contract reads it: `finishedAt`, or for a
 * final attempt without one (a platform that does not record it), `createdAt` plus `latencyMs`
 * when it succeeded. Null while pending.
 */
export function finishedAtOf(a: SimAttempt): number | null {
  if (a.finishedAt !== null) return a.finishedAt;
  if (a.status === 'pending') return null;
  return a.createdAt + (a.status === 'succeeded' ? (a.latencyMs ?? 0) : 0);
}

/** The rows of `attempts` as the platform had them at `t`: see attemptAsOf. */
export function* attemptsAsOf(
  attempts: Iterable<SimAttempt>,
  t: number,
): Generator<SimAttempt, void, undefined> {
  for (const a of attempts) {
    const row = attemptAsOf(a, t);
    if (row !== null) yield row;
  }
}

/** Extra failures that bring the pair's failure share up to `rate`, as a share of the other attempts. */
function extraFailures(pair: TrafficPair, rate: number): number {
  return rate > pair.failureRate ? (rate - pair.failureRate) / (1 - pair.failureRate) : 0;
}

const NO_EFFECTS: Readonly<ActiveEffects> = Object.freeze({
  outageShare: 0,
  outageTimeoutShare: INCIDENT_TIMEOUT_SHARE,
  failureRate: 0,
  stuckShare: 0,
  slowMs: 0,
});

/** Overlapping scenarios combine: the strongest effect of each kind wins. */
function activeEffects(scenarios: readonly Scenario[], at: number): Readonly<ActiveEffects> {
  if (scenarios.length === 0) return NO_EFFECTS;
  let effects: ActiveEffects | null = null;
  for (const s of scenarios) {
    if (at < s.from || at >= s.to) continue;
    effects ??= { ...NO_EFFECTS };
    const e = s.effect;
    switch (e.type) {
      case 'outage': {
        // The outage failing most attempts wins, with its own timeout share.
        const share = e.share ?? 1;
        const timeoutShare = e.timeoutShare ?? INCIDENT_TIMEOUT_SHARE;
        if (
          share > effects.outageShare ||
          (share === effects.outageShare && timeoutShare > effects.outageTimeoutShare)
        ) {
          effects.outageShare = share;
          effects.outageTimeoutShare = timeoutShare;
        }
        break;
      }
      case 'failureRate':
        effects.failureRate = Math.max(effects.failureRate, e.rate);
        break;
      case 'slide': {
        const progress = (at - s.from) / (s.to - s.from);
        effects.failureRate = Math.max(effects.failureRate, e.fromRate + (e.toRate - e.fromRate) * progress);
        break;
      }
      case 'stuckPending':
        effects.stuckShare = Math.max(effects.stuckShare, e.share);
        break;
      case 'slow':
        effects.slowMs = Math.max(effects.slowMs, e.latencyMs);
        break;
    }
  }
  return effects ?? NO_EFFECTS;
}

function pick(codes: readonly string[], u: number): string {
  return codes[Math.min(codes.length - 1, Math.floor(u * codes.length))] ?? 'UNKNOWN_ERROR';
}

let defaultIds: readonly string[] | null = null;

/** The ids of generateUsers(DEFAULT_USER_COUNT, ...), built once rather than per attempt. */
function defaultUserIds(): readonly string[] {
  defaultIds ??= Array.from({ length: DEFAULT_USER_COUNT }, (_, i) => userIdFor(i));
  return defaultIds;
}

interface UserPools {
  everyone: readonly string[];
  byRegion: ReadonlyMap<string, readonly string[]>;
}

function userPools(users: TrafficOptions['users']): UserPools {
  if (users === undefined) return { everyone: defaultUserIds(), byRegion: new Map() };
  if (users.length === 0) {
    throw new RangeError('generateAttempts: users: expected at least one user, got none');
  }
  const everyone: string[] = [];
  const byRegion = new Map<string, string[]>();
  for (const user of users) {
    if (typeof user === 'string') {
      everyone.push(user);
      continue;
    }
    everyone.push(user.id);
    const pool = byRegion.get(user.region);
    if (pool) pool.push(user.id);
    else byRegion.set(user.region, [user.id]);
  }
  return { everyone, byRegion };
}

function validateOptions(options: TrafficOptions, rateScale: number): void {
  const { from, to } = options;
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new RangeError(
      `generateAttempts: from, to: expected finite epoch milliseconds with from <= to, got ${from}, ${to}`,
    );
  }
  if (!Number.isFinite(options.seed)) {
    throw new RangeError(`generateAttempts: seed: expected a finite number, got ${options.seed}`);
  }
  if (!Number.isFinite(rateScale) || rateScale < 0) {
    throw new RangeError(`generateAttempts: rateScale: expected a non-negative number, got ${rateScale}`);
  }
  const hourly = options.platform.dailyCycle.hourly;
  if (hourly.length !== 24 || !hourly.every((f) => f >= 0 && f <= 1)) {
    // Arrivals are thinned from the peak rate, which only works for factors in [0, 1].
    throw new RangeError(
      `generateAttempts: platform.dailyCycle.hourly: expected 24 factors in [0, 1], got [${hourly.join(', ')}]`,
    );
  }
  if (options.firstId !== undefined && !Number.isSafeInteger(options.firstId)) {
    throw new RangeError(`generateAttempts: firstId: expected a safe integer, got ${options.firstId}`);
  }
}

/** Rejects scenarios that could never take effect: a typo would otherwise pass silently. */
export function validateScenario(platform: Platform, scenario: Scenario, index = 0): void {
  const where = `scenarios[${index}] (${scenario.channel} ${scenario.region})`;
  const regions = platform.pairs.filter((p) => p.channel === scenario.channel).map((p) => p.region);
  if (regions.length === 0) {
    const channels = [...new Set(platform.pairs.map((p) => p.channel))].join(', ');
    throw new RangeError(
      `${where}: channel: expected a channel with traffic (${channels}), got ${scenario.channel}`,
    );
  }
  if (scenario.region !== '*' && !regions.includes(scenario.region)) {
    throw new RangeError(
      `${where}: region: expected '*' or a region where ${scenario.channel} has traffic (${regions.join(', ')}), got ${scenario.region}`,
    );
  }
  if (!Number.isFinite(scenario.from) || !Number.isFinite(scenario.to) || scenario.from >= scenario.to) {
    throw new RangeError(
      `${where}: from, to: expected epoch milliseconds with from < to, got ${scenario.from}, ${scenario.to}`,
    );
  }
  const e = scenario.effect;
  if (e.type === 'failureRate' && !(e.rate >= 0 && e.rate <= 1)) {
    throw new RangeError(`${where}: effect.rate: expected a share in [0, 1], got ${e.rate}`);
  }
  if (e.type === 'outage' && e.share !== undefined && !(e.share > 0 && e.share <= 1)) {
    throw new RangeError(`${where}: effect.share: expected a share in (0, 1], got ${e.share}`);
  }
  if (e.type === 'outage' && e.timeoutShare !== undefined && !(e.timeoutShare >= 0 && e.timeoutShare <= 1)) {
    throw new RangeError(`${where}: effect.timeoutShare: expected a share in [0, 1], got ${e.timeoutShare}`);
  }
  if (e.type === 'slide') {
    for (const key of ['fromRate', 'toRate'] as const) {
      if (!(e[key] >= 0 && e[key] <= 1)) {
        throw new RangeError(`${where}: effect.${key}: expected a share in [0, 1], got ${e[key]}`);
      }
    }
  }
  if (e.type === 'stuckPending' && !(e.share >= 0 && e.share <= 1)) {
    throw new RangeError(`${where}: effect.share: expected a share in [0, 1], got ${e.share}`);
  }
  if (e.type === 'slow' && !(Number.isFinite(e.latencyMs) && e.latencyMs > 0)) {
    throw new RangeError(
      `${where}: effect.latencyMs: expected a positive number of milliseconds, got ${e.latencyMs}`,
    );
  }
}

/** Restores heap order below `i`: earliest next arrival on top, pair order breaking ties. */
function siftDown(heap: PairStream[], i: number): void {
  const n = heap.length;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let least = i;
    if (left < n && before(heap[left]!, heap[least]!)) least = left;
    if (right < n && before(heap[right]!, heap[least]!)) least = right;
    if (least === i) return;
    [heap[i], heap[least]] = [heap[least]!, heap[i]!];
    i = least;
  }
}

function before(a: PairStream, b: PairStream): boolean {
  return a.nextAt < b.nextAt || (a.nextAt === b.nextAt && a.index < b.index);
}
