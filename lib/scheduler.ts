// Ticks: node-cron fires each scheduled job in every scheduler replica, and each fire becomes a
// BullMQ job whose id is derived from the job, the deployment and the fire time. Replicas firing
// the same tick add the same id, BullMQ keeps one, and one worker runs it: exactly once per tick,
// however many replicas run; another deployment's tick at the same time is another id. (Detectors keep a watermark in PostgreSQL as a second guard: a tick not newer
// than their state is skipped.)
import cron, { type ScheduledTask } from 'node-cron';
import type { AppContext } from './context.ts';
import type { Config } from './config/schema.ts';
import * as detect from '../jobs/detect.ts';
import * as sweepNotifications from '../jobs/sweep-notifications.ts';
import { detectors, type DetectorId } from './detection/registry.ts';

interface Schedule {
  name: string;
  /** What the log calls it: a detector's schedule, or another job's. */
  role: 'detector' | 'job';
  schedule: string;
  timezone: string;
  /** The job each tick becomes; every tick job takes `{ tickAt }`. */
  job: `detect-${DetectorId}` | typeof sweepNotifications.name;
  jobId: (deploymentId: string, tickAt: number) => string;
}

/** What runs on a schedule, given the config: every registered detector enabled there, and the sweeper. */
function schedules(config: Config): Schedule[] {
  const list: Schedule[] = [];
  for (const detector of detectors) {
    const settings = detector.settingsOf(config);
    if (!settings.enabled) continue;
    list.push({
      name: detector.id,
      role: 'detector',
      schedule: settings.schedule,
      timezone: config.timezone,
      job: detect.jobName(detector.id),
      jobId: (deploymentId, tickAt) => detect.tickJobId(detector.id, deploymentId, tickAt),
    });
  }
  list.push({
    name: 'notification-sweeper',
    role: 'job',
    schedule: config.notifications.sweeper.schedule,
    timezone: config.timezone,
    job: sweepNotifications.name,
    jobId: sweepNotifications.jobIdFor,
  });
  return list;
}

export class Scheduler {
  private readonly ctx: AppContext;
  private scheduled: Array<{ entry: Schedule; task: ScheduledTask }> = [];
  private readonly onChange = (next: Config) => this.apply(next);

  constructor(ctx: AppContext) {
    this.ctx = ctx;
  }

  start(): void {
    this.apply(this.ctx.config());
    this.ctx.configStore.on('change', this.onChange);
  }

  /** (Re)schedules what changed: a schedule, the zone, or a detector switched on or off. */
  private apply(config: Config): void {
    const wanted = schedules(config);
    const same = (a: Schedule, b: Schedule) =>
      a.name === b.name && a.schedule === b.schedule && a.timezone === b.timezone;
    for (const { entry, task } of this.scheduled) {
      if (!wanted.some((w) => same(w, entry))) void task.destroy();
    }
    this.scheduled = this.scheduled.filter(({ entry }) => wanted.some((w) => same(w, entry)));
    for (const entry of wanted) {
      if (this.scheduled.some((s) => s.entry.name === entry.name)) continue;
      const task = cron.schedule(entry.schedule, (fire) => this.fire(entry, fire.date), {
        name: `forewarn:${entry.name}`,
        timezone: entry.timezone,
      });
      this.scheduled.push({ entry, task });
      this.ctx.logger.info(
        { component: 'scheduler', detector: entry.name, schedule: entry.schedule, timezone: entry.timezone },
        entry.role === 'detector' ? 'detector scheduled' : `${entry.name} scheduled`,
      );
    }
  }

  private async fire(entry: Schedule, date: Date): Promise<void> {
    // node-cron reports the scheduled second; rounding absorbs sub-second jitter between replicas.
    const tickAt = Math.round(date.getTime() / 1000) * 1000;
    try {
      await this.ctx.queues.enqueue(
        entry.job,
        { tickAt: new Date(tickAt).toISOString() },
        { jobId: entry.jobId(this.ctx.deploymentId, tickAt) },
      );
    } catch (error) {
      this.ctx.logger.error(
        { component: 'scheduler', job: entry.name, err: error },
        'could not enqueue tick; it is skipped',
      );
    }
  }

  async stop(): Promise<void> {
    this.ctx.configStore.off('change', this.onChange);
    await Promise.all(this.scheduled.map(({ task }) => task.destroy()));
    this.scheduled = [];
  }
}
