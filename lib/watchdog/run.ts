// Watching the watcher: every process with the notifications role checks, every
// watchdog.checkEverySeconds, that each enabled detector still ticks and that the platform's
// payment data is fresh, and tells ops when either stops and when it is back. Not the scheduler
// role's job: if the scheduler dies, the watchdog must still notice. Replicas take turns on an
// advisory lock, and the messages' dedupe keys make each change one message however many check.
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import type { AppContext } from '../context.ts';
import { inTransaction } from '../db/pool.ts';
import { insertNotifications } from '../notifications/store.ts';
import { watchdogDrafts } from './alerts.ts';
import { tickBounds, unevenSchedules } from './bounds.ts';
import { decideWatchdog, type Verdict } from './decide.ts';
import { readDataHighWater, readLastTicks, type DataHighWater } from './read.ts';
import { lockWatchdog, readDatabaseClock, readWatchStates, writeWatchStates } from './state.ts';

export interface WatchdogOptions {
  /** The clock checks judge by; by default forewarn's database's (the one the ticks' times come from). */
  now?: () => number;
  /** Between checks; by default watchdog.checkEverySeconds, read before each wait. */
  intervalMs?: number;
}

export interface WatchdogCheck {
  now: number;
  verdicts: Verdict[];
  /** The ops notifications this check recorded (none when another replica told them first). */
  notificationIds: string[];
  /** Whether the platform database could be read this time. */
  dataRead: boolean;
}

/** One check. Throws when forewarn's own database cannot be read or written. */
export async function runWatchdogCheck(
  ctx: AppContext,
  options: WatchdogOptions = {},
): Promise<WatchdogCheck> {
  const config = ctx.config();
  const log = ctx.logger.child({ component: 'watchdog' });
  const bounds = tickBounds(config);
  // Outside the lock: a slow or unreachable platform database must not hold up the other
  // replicas' checks, nor stop the ticks from being watched (its detectors' ticks stop too).
  let data: DataHighWater | null = null;
  try {
    data = await readDataHighWater(ctx.platformDb, ctx.platformSchema);
  } catch (error) {
    log.error(
      { code: 'FW_WATCHDOG_CHECK_FAILED', part: 'data', err: error },
      "watchdog could not read the platform data's newest row; the ticks are still checked",
    );
  }
  const result = await inTransaction(ctx.db, async (client) => {
    await lockWatchdog(client);
    const now = options.now?.() ?? (await readDatabaseClock(client));
    const previous = await readWatchStates(client);
    const ticks = await readLastTicks(
      client,
      bounds.map((b) => b.detector),
    );
    const decision = decideWatchdog({
      ticks,
      tickBounds: new Map(bounds.map((b) => [b.detector, b.boundMs])),
      data,
      maxDataLagMs: config.watchdog.maxDataLagSeconds * 1000,
      previous,
      now,
    });
    await writeWatchStates(client, decision.verdicts, decision.forget);
    const notificationIds = await insertNotifications(
      client,
      decision.verdicts.flatMap((v) => watchdogDrafts(config, v, now)),
    );
    return { now, verdicts: decision.verdicts, notificationIds, dataRead: data !== null };
  });
  for (const v of result.verdicts) {
    if (v.transition === null) continue;
    const fields = {
      subject: v.subject,
      ageSeconds: Math.round(v.ageMs / 1000),
      boundSeconds: Math.round(v.boundMs / 1000),
      lastAt: v.lastAt === null ? null : new Date(v.lastAt).toISOString(),
    };
    if (v.transition === 'alert')
      log.error(
        { code: 'FW_WATCHDOG_TRIPPED', ...fields },
        v.watched === 'ticks'
          ? `${v.detector} has not ticked for longer than its bound: its ticks look stopped`
          : "the platform's newest payment attempt lags its clock beyond watchdog.maxDataLagSeconds",
      );
    else log.info(fields, v.watched === 'ticks' ? `${v.detector} ticks again` : 'platform data caught up');
  }
  // Committed: queue them on the ops-alerts queue (the sweeper sends them, should this be lost).
  if (result.notificationIds.length > 0)
    await enqueueDeliveries(
      ctx,
      result.notificationIds,
      `watchdog@${ctx.deploymentId}@${result.now}@${result.notificationIds[0]}`,
    );
  return result;
}

export interface RunningWatchdog {
  /** Stops the checks; resolves once a check in progress has finished. */
  stop(): Promise<void>;
}

/**
 * Checks on an unref'd timer (it never keeps the process alive) until stopped. A failed check is
 * logged and the next one runs as usual. The first check comes one interval after the start, so
 * that a restarted deployment's scheduler has ticked before anything is judged.
 */
export function startWatchdog(ctx: AppContext, options: WatchdogOptions = {}): RunningWatchdog {
  const log = ctx.logger.child({ component: 'watchdog' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    const ms = options.intervalMs ?? ctx.config().watchdog.checkEverySeconds * 1000;
    timer = setTimeout(check, ms);
    timer.unref();
  };
  const check = () => {
    if (!ctx.config().watchdog.enabled) return schedule();
    running = runWatchdogCheck(ctx, options).then(
      () => undefined,
      (error: unknown) =>
        log.error(
          { code: 'FW_WATCHDOG_CHECK_FAILED', err: error },
          'watchdog check failed; the next one runs as usual',
        ),
    );
    void running.finally(() => {
      running = undefined;
      schedule();
    });
  };
  schedule();
  // Once, off the start's path: a schedule that pauses (at night) trips a bound taken from its
  // next gap every time it pauses. Say so, with the fix, rather than alert ops every night.
  const warning = setTimeout(() => {
    try {
      for (const u of unevenSchedules(ctx.config()))
        log.warn(
          {
            code: 'FW_WATCHDOG_UNEVEN_SCHEDULE',
            detector: u.detector,
            boundSeconds: u.boundMs / 1000,
            maxGapSeconds: u.maxGapMs / 1000,
          },
          `${u.detector}'s schedule leaves ${u.maxGapMs / 1000} s between some ticks, longer than the watchdog's bound of ${u.boundMs / 1000} s taken from its next gap: it will alert whenever the schedule pauses; set watchdog.ticks.maxAgeSeconds.${u.configKey}`,
        );
    } catch (error) {
      log.error({ err: error }, 'watchdog could not check the schedules for uneven gaps');
    }
  }, 0);
  warning.unref();
  return {
    async stop() {
      clearTimeout(warning);
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
