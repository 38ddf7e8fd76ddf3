// The inactivity watcher's registry entry: its settings (config key detectors.inactivity) and its
// paged pass (lib/detection/paged.ts) over the platform's users: a page of active users idle
// between the first step and maxIdleDays, most recently idle first (keyset over the index that
// docs/platform-contract.md names), each page's remembered periods read from
// forewarn.subject_state, the pure detector (detectors/inactivity) on the page, its check-ups
// recorded set-based before the next page. The pass is paced: it records at most
// remindersPerMinute check-ups a minute since the previous pass and stops there, so a first run
// over a large backlog drains it at that rate. Then the sweep ends the remembered periods the
// platform no longer bears out (the user came back, or is no longer active, or aged out).
//
// All of it runs in the tick's transaction: a crash anywhere rolls the pass back whole, and the
// next pass starts from what was committed, so nobody is reminded twice and nobody is missed.
import type { z } from 'zod';
import {
  DETECTOR,
  detectInactivity,
  inactivitySettingsProblems,
  inactivitySettingsSchema,
  periodEnded,
  periodStands,
  type IdleUser,
  type InactivityChange,
  type InactivityTally,
} from '../../detectors/inactivity/index.ts';
import { table } from '../format.ts';
import { readActiveIdleSince, readIdleUserPage } from '../platform/inactive-users.ts';
import { isTimeZone } from '../policy/quiet-hours.ts';
import {
  definePagedDetector,
  detectorBaseSettings,
  refineSettings,
  type DetectionContext,
  type TickResult as GenericTickResult,
} from './detector.ts';
import type { PassFindings } from './paged.ts';

export const inactivityConfigSchema = inactivitySettingsSchema
  .extend(detectorBaseSettings)
  .superRefine(refineSettings(inactivitySettingsProblems));
export type InactivityConfig = z.infer<typeof inactivityConfigSchema>;

const DAY = 86_400_000;
const MINUTE = 60_000;
/** A pass gets the minutes since the previous one as its pacing budget, up to this many. */
const MAX_BUDGET_MINUTES = 60;
/** Changes logged one by one when a pass commits, and listed by `forewarn run`; beyond, counted. */
const LISTED_CHANGES = 50;

/** The detector-wide state (forewarn.detector_state): users keep theirs in subject_state. */
export interface InactivityHead {
  version: 1;
}

export interface InactivitySignals {
  /** How many users may get a check-up recorded this pass (pacing). */
  budget: number;
}

export type InactivityFindings = PassFindings<InactivityTally>;
export type TickResult = GenericTickResult<InactivityFindings, InactivityChange>;

export const inactivity = definePagedDetector({
  id: DETECTOR,
  settings: inactivityConfigSchema,
  bucketMs: 1_000,
  initialState: (): InactivityHead => ({ version: 1 }),
  upgradeState: (stored: InactivityHead) => stored,

  async read(
    _ctx,
    { settings, now, evaluatedAt }: { settings: InactivityConfig; now: number; evaluatedAt: number | null },
  ) {
    return {
      signals: {
        budget: pacingBudget(settings.remindersPerMinute, now, evaluatedAt),
      } satisfies InactivitySignals,
      cache: null,
      skippedRows: 0,
    };
  },

  pass: {
    pages: (ctx, { settings, now }) => idlePages(ctx, settings, now),
    keyOf: (user) => user.userId,
    // Pages come most recently idle first, and a remembered period holds its start.
    position: { ofSubject: (user) => user.idleSince, ofState: (state) => state.since },
    detect: detectInactivity,
    limit: (signals) => signals.budget,
    emptyTally: () => ({ idle: 0, opened: 0, steps: 0, ended: 0 }),
    addTally: (total, page) => ({
      idle: total.idle + page.idle,
      opened: total.opened + page.opened,
      steps: total.steps + page.steps,
      ended: total.ended + page.ended,
    }),
    pageSize: (settings) => settings.pageSize,
    lookup: (ctx, keys) => readActiveIdleSince(ctx.platformDb, ctx.platformSchema, keys),
    sweep(userId, state, idleSince, settings, now) {
      const end = periodStands(state, idleSince ?? null, now, settings);
      return end === null ? null : [periodEnded(userId, state, end, now)];
    },
    describeChange: (c) => ({ userId: c.userId, change: c.type }),
  },

  committed(log, recorded, changeCount) {
    for (const r of recorded.slice(0, LISTED_CHANGES)) {
      const c = r.change;
      log.info(
        {
          incidentId: r.incidentId,
          change: c.type,
          userId: c.userId,
          ...(c.type === 'resolved'
            ? { resolution: c.resolution }
            : { stepDays: c.stepDays, idleDays: c.idleDays }),
        },
        c.type === 'resolved' ? 'inactivity period ended' : `security check-up at ${c.stepDays} days`,
      );
    }
    if (changeCount > LISTED_CHANGES)
      log.info(
        { changes: changeCount, logged: LISTED_CHANGES },
        `${changeCount} inactivity changes recorded; the first ${LISTED_CHANGES} are logged one by one`,
      );
  },

  describe(result) {
    let out = '';
    const listed = result.changes.slice(0, LISTED_CHANGES);
    if (listed.length > 0) {
      out += `${table(
        ['change', 'user', 'step (days)', 'idle (days)', 'since', 'why'],
        listed.map((c) => [
          c.type,
          c.userId,
          c.type === 'resolved' ? null : c.stepDays,
          c.type === 'resolved' ? null : c.idleDays,
          new Date(c.type === 'resolved' ? c.evidence.since : c.since).toISOString(),
          c.type === 'resolved' ? c.resolution : c.neverSignedIn ? 'never signed in' : null,
        ]),
      )}\n`;
      if (result.changeCount > listed.length)
        out += `... and ${result.changeCount - listed.length} more (a dry run with --format json lists them all)\n`;
    }
    const f = result.findings;
    if (f) {
      const t = f.tally;
      out += `${f.subjects} idle users in ${f.pages} page${f.pages === 1 ? '' : 's'}: ${t.opened} first check-ups, ${t.steps} later steps, ${t.ended + f.gone} periods ended`;
      if (f.limited)
        out += `; paced: stopped at this pass's limit, ${f.deferred}+ due users wait for the next`;
      else if (f.deferred > 0) out += `; ${f.deferred} of them beyond this pass's pacing limit`;
      out += '\n';
    }
    return out;
  },
});

/** One live inactivity pass (the detection job and `forewarn run inactivity`). */
export const runInactivityTick = inactivity.run;

/**
 * The check-ups a pass may record: remindersPerMinute for each minute since the previous pass
 * (up to MAX_BUDGET_MINUTES, so a daemon that was down does not make up for it at once); a
 * first pass gets one minute's worth.
 */
export function pacingBudget(perMinute: number, now: number, evaluatedAt: number | null): number {
  const minutes =
    evaluatedAt === null ? 1 : Math.min(MAX_BUDGET_MINUTES, Math.max(0, now - evaluatedAt) / MINUTE);
  return Math.floor(perMinute * minutes);
}

/** The idle users a page at a time; users whose zone is no IANA zone are skipped and reported. */
async function* idlePages(
  ctx: DetectionContext,
  settings: InactivityConfig,
  now: number,
): AsyncGenerator<IdleUser[]> {
  let after: { cursor: string; userId: string } | null = null;
  for (;;) {
    const rows = await readIdleUserPage(ctx.platformDb, {
      schema: ctx.platformSchema,
      idleUntilMs: now - settings.stepDays[0]! * DAY,
      idleAfterMs: now - settings.maxIdleDays * DAY,
      after,
      limit: settings.pageSize,
    });
    const invalid = rows.filter((r) => r.timezone === null || !isTimeZone(r.timezone));
    ctx.invalidRows.report(
      'users',
      invalid.map((r) => ({
        id: r.userId,
        reason: `timezone ${JSON.stringify(r.timezone)} is not an IANA time zone`,
      })),
      invalid.length,
    );
    const page = invalid.length === 0 ? rows : rows.filter((r) => !invalid.includes(r));
    if (page.length > 0)
      yield page.map((r) => ({ userId: r.userId, idleSince: r.idleSince, neverSignedIn: r.neverSignedIn }));
    if (rows.length < settings.pageSize) return;
    const last = rows.at(-1)!;
    after = { cursor: last.cursor, userId: last.userId };
  }
}
