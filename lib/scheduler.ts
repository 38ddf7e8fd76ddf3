// Ticks: node-cron fires each enabled detector on its schedule in every scheduler replica, and
// each fire becomes a BullMQ job whose id is derived from the detector and the fire time. Replicas
// firing the same tick add the same id, BullMQ keeps one, and one worker runs it: exactly once per
// tick, however many replicas run. (The detector's stored watermark is a second guard: a tick not
// newer than the state is skipped.)
import cron, { type ScheduledTask } from 'node-cron';
import type { AppContext } from './context.ts';
import type { Config } from './config/schema.ts';
import { tickJobId } from '../jobs/detect-payment-health.ts';

interface ScheduledDetector {
  detector: string;
  schedule: string;
  timezone: string;
  task: ScheduledTask;
}

export class Scheduler {
  private readonly ctx: AppContext;
  private scheduled: ScheduledDetector[] = [];
  private readonly onChange = (next: Config) => this.apply(next);

  constructor(ctx: AppContext) {
    this.ctx = ctx;
  }

  start(): void {
    this.apply(this.ctx.config());
    this.ctx.configStore.on('change', this.onChange);
  }

  /** (Re)schedules detectors whose schedule, zone or enabled flag changed. */
  private apply(config: Config): void {
    const wanted = config.detectors.paymentHealth.enabled
      ? [
          {
            detector: 'payment-health',
            schedule: config.detectors.paymentHealth.schedule,
            timezone: config.timezone,
          },
        ]
      : [];
    for (const entry of this.scheduled) {
      const keep = wanted.some(
        (w) =>
          w.detector === entry.detector && w.schedule === entry.schedule && w.timezone === entry.timezone,
      );
      if (!keep) void entry.task.destroy();
    }
    this.scheduled = this.scheduled.filter((entry) =>
      wanted.some(
        (w) =>
          w.detector === entry.detector && w.schedule === entry.schedule && w.timezone === entry.timezone,
      ),
    );
    for (const w of wanted) {
      if (this.scheduled.some((entry) => entry.detector === w.detector)) continue;
      const task = cron.schedule(w.schedule, (fire) => this.fire(w.detector, fire.date), {
        name: `forewarn:${w.detector}`,
        timezone: w.timezone,
      });
      this.scheduled.push({ ...w, task });
      this.ctx.logger.info(
        { component: 'scheduler', detector: w.detector, schedule: w.schedule, timezone: w.timezone },
        'detector scheduled',
      );
    }
  }

  private async fire(detector: string, date: Date): Promise<void> {
    // node-cron reports the scheduled second; rounding absorbs sub-second jitter between replicas.
    const tickAt = Math.round(date.getTime() / 1000) * 1000;
    try {
      await this.ctx.queues.enqueue(
        'detect-payment-health',
        { tickAt: new Date(tickAt).toISOString() },
        { jobId: tickJobId(tickAt) },
      );
    } catch (error) {
      this.ctx.logger.error(
        { component: 'scheduler', detector, err: error },
        'could not enqueue tick; it is skipped',
      );
    }
  }

  async stop(): Promise<void> {
    this.ctx.configStore.off('change', this.onChange);
    await Promise.all(this.scheduled.map((entry) => entry.task.destroy()));
    this.scheduled = [];
  }
}
