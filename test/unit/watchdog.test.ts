// The watchdog's pure parts on a fixed clock: the decision (ok / failing per subject, the
// transitions that warrant a message, a never-run detector measured from when it was first seen,
// data lag on the platform's clock), the tick bounds derived from the schedules (and their
// overrides), the messages' dedupe keys, and the config section's defaults and errors.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { parseConfigText } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { ConfigError } from '../../lib/errors.ts';
import { watchdogDrafts } from '../../lib/watchdog/alerts.ts';
import { scheduleGapMs, tickBounds, unevenSchedules } from '../../lib/watchdog/bounds.ts';
import {
  DATA_SUBJECT,
  decideWatchdog,
  type Verdict,
  type WatchInputs,
  type WatchState,
} from '../../lib/watchdog/decide.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const S = 1_000;
// Sunday 22 November 2026, 10:00 UTC.
const T0 = Date.UTC(2026, 10, 22, 10, 0);
const BOUND = 180 * S;
const LAG = 900 * S;

let shipped: string;
beforeAll(async () => {
  shipped = await readFile(SHIPPED, 'utf8');
});

function config(edits: Array<[string[], unknown]> = []): Config {
  const doc = parseDocument(shipped);
  for (const [path, value] of edits) {
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, doc.createNode(value));
  }
  return parseConfigText(String(doc), 'variant.yaml');
}

function refused(edits: Array<[string[], unknown]>): ConfigError {
  try {
    config(edits);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected the config to be refused');
}

function inputs(over: Partial<WatchInputs> & { now: number }): WatchInputs {
  return {
    ticks: [{ detector: 'payment-health', finishedAt: T0, outcome: 'evaluated' }],
    tickBounds: new Map([['payment-health', BOUND]]),
    data: { newestAt: T0, platformNow: T0 },
    maxDataLagMs: LAG,
    previous: new Map(),
    ...over,
  };
}

/** Runs checks in turn, each on the state the previous one stored. */
function run(
  steps: Array<Partial<WatchInputs> & { now: number }>,
  previous = new Map<string, WatchState>(),
): Verdict[][] {
  const out: Verdict[][] = [];
  for (const step of steps) {
    const decision = decideWatchdog(inputs({ ...step, previous }));
    previous = new Map(previous);
    for (const v of decision.verdicts) previous.set(v.subject, v.next);
    for (const s of decision.forget) previous.delete(s);
    out.push(decision.verdicts);
  }
  return out;
}

const of = (verdicts: Verdict[], subject: string) => verdicts.find((v) => v.subject === subject)!;

describe('ticks', () => {
  it('are ok up to the bound, stopped beyond it (one alert), and recovered when a tick comes (one notice)', () => {
    const tick = (finishedAt: number) => [{ detector: 'payment-health', finishedAt, outcome: 'evaluated' }];
    const checks = run([
      { now: T0 + 60 * S, ticks: tick(T0) },
      { now: T0 + BOUND, ticks: tick(T0) },
      { now: T0 + BOUND + 1, ticks: tick(T0) },
      { now: T0 + BOUND + 60 * S, ticks: tick(T0) },
      { now: T0 + 600 * S, ticks: tick(T0 + 590 * S) },
      { now: T0 + 660 * S, ticks: tick(T0 + 650 * S) },
    ]).map((vs) => of(vs, 'ticks:payment-health'));
    expect(checks.map((v) => [v.status, v.transition])).toEqual([
      ['ok', null],
      ['ok', null],
      ['failing', 'alert'],
      ['failing', null],
      ['ok', 'recovery'],
      ['ok', null],
    ]);
    expect(checks[2]).toMatchObject({
      ageMs: BOUND + 1,
      boundMs: BOUND,
      lastAt: T0,
      lastOutcome: 'evaluated',
    });
    // The episode is the last tick seen when it stopped, the same for every replica.
    expect(checks[2]!.next).toMatchObject({ status: 'failing', since: T0 + BOUND + 1, episode: T0 });
    expect(checks[4]!.recoveredFrom).toMatchObject({ since: T0 + BOUND + 1, episode: T0 });
    expect(checks[4]!.ageMs).toBe(10 * S);
  });

  it('of a detector that never ran are measured from when the watchdog first saw it, not from 1970', () => {
    const never = [{ detector: 'payment-health', finishedAt: null, outcome: null }];
    const checks = run([
      { now: T0, ticks: never },
      { now: T0 + BOUND, ticks: never },
      { now: T0 + BOUND + S, ticks: never },
    ]).map((vs) => of(vs, 'ticks:payment-health'));
    expect(checks.map((v) => [v.ageMs, v.transition])).toEqual([
      [0, null],
      [BOUND, null],
      [BOUND + S, 'alert'],
    ]);
    expect(checks[2]!.next).toMatchObject({ firstSeenAt: T0, episode: T0 });
  });

  it('already stopped at the first check alert at once', () => {
    const [first] = run([{ now: T0 + 3_600 * S }]);
    expect(of(first!, 'ticks:payment-health')).toMatchObject({ status: 'failing', transition: 'alert' });
  });

  it('a tick finishing after the check began (the clocks of two writers) is age 0, not negative', () => {
    const [first] = run([{ now: T0 - 5 * S }]);
    expect(of(first!, 'ticks:payment-health').ageMs).toBe(0);
  });

  it('of a detector no longer watched (disabled) drop its state without a message', () => {
    const [, second] = run([
      { now: T0 + 3_600 * S },
      { now: T0 + 3_700 * S, ticks: [], tickBounds: new Map() },
    ]);
    expect(second!.find((v) => v.subject === 'ticks:payment-health')).toBeUndefined();
    const decision = decideWatchdog(
      inputs({
        now: T0,
        ticks: [],
        previous: new Map([
          [
            'ticks:inventory',
            { subject: 'ticks:inventory', status: 'failing', since: T0, firstSeenAt: T0, episode: T0 },
          ],
        ]),
      }),
    );
    expect(decision.forget).toEqual(['ticks:inventory']);
  });
});

describe('data', () => {
  it('lag on the platform clock: a watchdog clock far ahead sees no lag, a platform clock past the bound does', () => {
    const [ahead] = run([{ now: T0 + 7_200 * S, data: { newestAt: T0, platformNow: T0 + 10 * S } }]);
    expect(of(ahead!, DATA_SUBJECT)).toMatchObject({ status: 'ok', ageMs: 10 * S });
    const checks = run([
      { now: T0, data: { newestAt: T0, platformNow: T0 + LAG } },
      { now: T0, data: { newestAt: T0, platformNow: T0 + LAG + S } },
      { now: T0, data: { newestAt: T0, platformNow: T0 + 2 * LAG } },
      { now: T0, data: { newestAt: T0 + 2 * LAG - S, platformNow: T0 + 2 * LAG } },
    ]).map((vs) => of(vs, DATA_SUBJECT));
    expect(checks.map((v) => [v.status, v.transition, v.ageMs])).toEqual([
      ['ok', null, LAG],
      ['failing', 'alert', LAG + S],
      ['failing', null, 2 * LAG],
      ['ok', 'recovery', S],
    ]);
    expect(checks[1]!.next.episode).toBe(T0);
  });

  it('an empty table lags from when the watchdog first saw it', () => {
    const empty = { newestAt: null, platformNow: T0 };
    const checks = run([
      { now: T0, data: empty },
      { now: T0 + LAG + S, data: { ...empty, platformNow: T0 + LAG + S } },
    ]).map((vs) => of(vs, DATA_SUBJECT));
    expect(checks.map((v) => [v.ageMs, v.transition])).toEqual([
      [0, null],
      [LAG + S, 'alert'],
    ]);
  });

  it('unread this time (the platform database is down): no verdict, and its state is kept, not dropped', () => {
    const [first, second] = run([
      { now: T0, data: { newestAt: T0 - 2 * LAG, platformNow: T0 } },
      { now: T0 + S, data: null },
    ]);
    expect(of(first!, DATA_SUBJECT).transition).toBe('alert');
    expect(second!.find((v) => v.subject === DATA_SUBJECT)).toBeUndefined();
    const previous = new Map([[DATA_SUBJECT, of(first!, DATA_SUBJECT).next]]);
    expect(decideWatchdog(inputs({ now: T0 + S, data: null, previous })).forget).toEqual([]);
  });
});

describe('messages', () => {
  it('one per ops address and webhook target, keyed by subject, episode and state: the same on every replica', () => {
    const cfg = config([
      [
        ['notifications', 'ops', 'emails'],
        ['Ops@Example.com', 'oncall@example.com'],
      ],
      [
        ['notifications', 'webhooks', 'targets'],
        [{ id: 'ops-wecom', url: 'https://qyapi.example.com/hook', format: 'wecom' }],
      ],
      [['notifications', 'ops', 'webhooks'], ['ops-wecom']],
    ]);
    const [alert] = run([{ now: T0 + BOUND + 5 * S }]);
    const verdict = of(alert!, 'ticks:payment-health');
    const drafts = watchdogDrafts(cfg, verdict, T0 + BOUND + 5 * S);
    expect(drafts.map((d) => [d.channel, d.address, d.dedupeKey])).toEqual([
      [
        'email',
        'Ops@Example.com',
        `watchdog:ticks:payment-health:${new Date(T0).toISOString()}:ops-watchdog-stopped:email:ops@example.com`,
      ],
      [
        'email',
        'oncall@example.com',
        `watchdog:ticks:payment-health:${new Date(T0).toISOString()}:ops-watchdog-stopped:email:oncall@example.com`,
      ],
      [
        'webhook',
        'ops-wecom',
        `watchdog:ticks:payment-health:${new Date(T0).toISOString()}:ops-watchdog-stopped:webhook:ops-wecom`,
      ],
    ]);
    expect(drafts[0]).toMatchObject({
      kind: 'ops-watchdog',
      audience: 'ops',
      category: 'ops',
      incidentId: null,
    });
    expect(drafts[0]!.data).toEqual({
      subject: 'ticks:payment-health',
      watched: 'ticks',
      state: 'stopped',
      detector: 'payment-health',
      lastTickAt: new Date(T0).toISOString(),
      lastOutcome: 'evaluated',
      newestAt: null,
      ageSeconds: 185,
      boundSeconds: 180,
      watchingSince: new Date(T0 + BOUND + 5 * S).toISOString(),
      failingSince: new Date(T0 + BOUND + 5 * S).toISOString(),
      checkedAt: new Date(T0 + BOUND + 5 * S).toISOString(),
      timeZone: 'Asia/Shanghai',
    });
    // A replica deciding a second later writes the same keys (the episode is the data's, not the clock's).
    const [later] = run([{ now: T0 + BOUND + 6 * S }]);
    expect(
      watchdogDrafts(cfg, of(later!, 'ticks:payment-health'), T0 + BOUND + 6 * S).map((d) => d.dedupeKey),
    ).toEqual(drafts.map((d) => d.dedupeKey));
  });

  it('the recovery and the data states, and nothing without a transition', () => {
    const cfg = config();
    const checks = run([
      { now: T0, data: { newestAt: T0 - LAG - S, platformNow: T0 } },
      { now: T0 + 60 * S, data: { newestAt: T0 + 59 * S, platformNow: T0 + 60 * S } },
      { now: T0 + 120 * S, data: { newestAt: T0 + 119 * S, platformNow: T0 + 120 * S } },
    ]).map((vs) => of(vs, DATA_SUBJECT));
    const states = checks.map((v, i) => watchdogDrafts(cfg, v, T0 + i * 60 * S).map((d) => d.data.state));
    expect(states).toEqual([['lagging'], ['caught-up'], []]);
    const [caughtUp] = watchdogDrafts(cfg, checks[1]!, T0 + 60 * S);
    expect(caughtUp!.dedupeKey).toBe(
      `watchdog:data:payment_attempts:${new Date(T0 - LAG - S).toISOString()}:ops-watchdog-caught-up:email:ops@example.com`,
    );
    expect(caughtUp!.data).toMatchObject({
      newestAt: new Date(T0 + 59 * S).toISOString(),
      ageSeconds: 1,
      failingSince: new Date(T0).toISOString(),
    });
    const recovered = run([
      { now: T0 + 3_600 * S },
      {
        now: T0 + 3_700 * S,
        ticks: [{ detector: 'payment-health', finishedAt: T0 + 3_690 * S, outcome: 'stale' }],
      },
    ]);
    expect(
      watchdogDrafts(cfg, of(recovered[1]!, 'ticks:payment-health'), T0 + 3_700 * S)[0]!.data,
    ).toMatchObject({
      state: 'recovered',
      lastOutcome: 'stale',
      ageSeconds: 10,
    });
  });
});

describe('tick bounds', () => {
  it('are missedFires x the schedule gap, at least minAgeSeconds, or the override; disabled detectors are not watched', () => {
    expect(scheduleGapMs('*/15 * * * * *', 'Asia/Shanghai')).toBe(15 * S);
    expect(scheduleGapMs('0 * * * * *', 'Asia/Shanghai')).toBe(60 * S);
    expect(scheduleGapMs('0 */10 * * * *', 'Asia/Shanghai')).toBe(600 * S);
    const shippedBounds = tickBounds(config());
    expect(shippedBounds.map((b) => [b.detector, b.boundMs / S, b.source])).toEqual([
      ['payment-health', 180, 'schedule'],
      ['error-spikes', 180, 'schedule'],
      ['inventory', 180, 'schedule'],
      ['inactivity', 180, 'schedule'],
    ]);
    const tuned = tickBounds(
      config([
        [['detectors', 'inventory', 'schedule'], '0 */10 * * * *'],
        [['detectors', 'errorSpikes', 'enabled'], false],
        [['watchdog', 'ticks', 'maxAgeSeconds'], { inactivity: 45 }],
      ]),
    );
    expect(tuned.map((b) => [b.detector, b.boundMs / S, b.source])).toEqual([
      ['payment-health', 180, 'schedule'],
      ['inventory', 1_800, 'schedule'],
      ['inactivity', 45, 'override'],
    ]);
    const fewer = tickBounds(config([[['watchdog', 'ticks'], { missedFires: 20, minAgeSeconds: 60 }]]));
    expect(fewer.map((b) => b.boundMs / S)).toEqual([300, 1_200, 1_200, 1_200]);
  });

  it('name the schedules that pause for longer than their bound, unless an override covers them', () => {
    expect(unevenSchedules(config())).toEqual([]);
    // Every 5 minutes from 08:00 to 22:55: a gap of 9 h 5 min every night, against a 900 s bound.
    const night = config([[['detectors', 'inventory', 'schedule'], '0 */5 8-22 * * *']]);
    expect(unevenSchedules(night)).toEqual([
      {
        detector: 'inventory',
        configKey: 'inventory',
        boundMs: 900 * S,
        minGapMs: 300 * S,
        maxGapMs: 32_700 * S,
      },
    ]);
    const covered = config([
      [['detectors', 'inventory', 'schedule'], '0 */5 8-22 * * *'],
      [['watchdog', 'ticks', 'maxAgeSeconds'], { inventory: 36_000 }],
    ]);
    expect(unevenSchedules(covered)).toEqual([]);
  });
});

describe('config', () => {
  it('has defaults when the section is missing', () => {
    expect(config([[['watchdog'], undefined]]).watchdog).toEqual({
      enabled: true,
      checkEverySeconds: 60,
      maxDataLagSeconds: 900,
      ticks: { missedFires: 3, minAgeSeconds: 180, maxAgeSeconds: {} },
    });
    expect(config([[['watchdog'], { enabled: false }]]).watchdog.checkEverySeconds).toBe(60);
  });

  it('refuses an unknown detector, a detector id instead of its key, and bad numbers, naming each', () => {
    const error = refused([
      [['watchdog', 'ticks', 'maxAgeSeconds'], { lowStock: 60, 'payment-health': 60, inventory: -1 }],
      [['watchdog', 'checkEverySeconds'], 0],
      [['watchdog', 'maxDataLagSeconds'], 'soon'],
      [['watchdog', 'enabled'], 'yes'],
      [['watchdog', 'every'], 5],
    ]);
    const at = (dotted: string) => {
      const p = error.problems.find((x) => x.path.replace(/ \(line \d+\)$/, '') === dotted);
      if (!p) throw new Error(`no problem at ${dotted}: ${JSON.stringify(error.problems)}`);
      return p;
    };
    const known =
      'paymentHealth (payment-health), errorSpikes (error-spikes), inventory (inventory), inactivity (inactivity)';
    expect(at('watchdog.ticks.maxAgeSeconds.lowStock')).toMatchObject({
      expected: `one of the registered detectors: ${known}`,
      found: '"lowStock"',
    });
    expect(at('watchdog.ticks.maxAgeSeconds.payment-health').expected).toBe(
      `the detector's config key "paymentHealth" (as under detectors), not its id (registered detectors: ${known})`,
    );
    expect(at('watchdog.ticks.maxAgeSeconds.inventory').expected).toBe('a value > 0');
    expect(at('watchdog.checkEverySeconds').expected).toBe('a value > 0');
    expect(at('watchdog.maxDataLagSeconds').expected).toBe('a number');
    expect(at('watchdog.enabled').expected).toBe('a boolean');
    expect(at('watchdog.every').found).toBe('unknown key "every"');
    expect(error.message).toContain('variant.yaml');
  });
});
