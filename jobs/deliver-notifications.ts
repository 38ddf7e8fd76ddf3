// Job: deliver a batch of recorded notifications to users (claim, render, send, record). Ops
// alerts go through the same steps in a job of their own (jobs/deliver-ops-alerts.ts).
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../lib/context.ts';
import type { EmailSender } from '../lib/channels/email.ts';
import { deliverNotifications } from '../lib/notifications/deliver.ts';
import { findMessageKind } from '../lib/messages/registry.ts';
import { staleRules } from '../lib/messages/stale.ts';
import { holdRule } from '../lib/notifications/policy.ts';
import { sendingRates } from '../lib/notifications/rates.ts';
import { readOpsNotificationIds } from '../lib/notifications/store.ts';

export const name = 'deliver-notifications';
export const queue = 'delivery';

/**
 * The job that delivers ops alerts, on a queue of its own (jobs/deliver-ops-alerts.ts, which
 * imports this file); the queue calls below only take a registered job name.
 */
const OPS_ALERTS = 'deliver-ops-alerts';

/** Notifications per delivery job: one job per recipient would cap throughput at BullMQ's job rate. */
export const MAX_IDS_PER_JOB = 1_000;

export const payload = z.strictObject({
  ids: z.array(z.string().regex(/^\d+$/, 'expected a notifications id')).min(1).max(MAX_IDS_PER_JOB),
});

export const defaultOptions: JobsOptions = {
  // Sending failures are handled per message inside the job; a failed job (e.g. the database
  // was down) is retried as a whole, and claims make that safe.
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

export async function handle(data: z.infer<typeof payload>, ctx: AppContext): Promise<DeliveryJobResult> {
  return deliverBatch(ctx, data.ids, { job: name, email: ctx.email });
}

/** What a delivery job returns (BullMQ keeps it as the job's return value). */
export interface DeliveryJobResult {
  claimed: number;
  sent: number;
  failed: number;
  cancelled: number;
  lost: number;
  retries: number;
  held: number;
}

/** Delivers `ids` through `email`; temporary failures come back as jobs of `job`. */
export async function deliverBatch(
  ctx: AppContext,
  ids: readonly string[],
  via: { job: typeof name | typeof OPS_ALERTS; email: () => EmailSender },
): Promise<DeliveryJobResult> {
  const outcome = await deliverNotifications(
    {
      db: ctx.db,
      config: ctx.config,
      logger: ctx.logger,
      templates: await ctx.templates(),
      channels: { email: via.email },
      // Where an in-app message leads: its kind's link, as the fan-out's inline delivery has it.
      linkOf: (n) => findMessageKind(n.kind)?.link?.(n.data) ?? null,
      workerId: ctx.workerId,
      stale: staleRules(ctx),
      hold: holdRule(ctx.config()),
      rates: sendingRates(ctx.redis, ctx.queues.prefix, ctx.config),
    },
    ids,
  );
  // Held messages (quiet hours) come back when their window ends; the sweeper is the safety net.
  for (const held of outcome.later) {
    await ctx.queues.enqueue(
      via.job,
      { ids: [held.id] },
      {
        jobId: `held@${ctx.deploymentId}@${held.id}@${held.dueAt}`,
        delay: Math.max(0, held.dueAt - Date.now()),
      },
    );
  }
  // Temporary failures come back when due; the sweeper is the safety net if this is lost.
  for (const retry of outcome.retries) {
    await ctx.queues.enqueue(
      via.job,
      { ids: [retry.id] },
      {
        // The deployment id keeps a recreated database's notification ids apart from this one's.
        jobId: `retry@${ctx.deploymentId}@${retry.id}@${retry.retryAt}`,
        delay: Math.max(0, retry.retryAt - Date.now()),
      },
    );
  }
  return {
    claimed: outcome.claimed,
    sent: outcome.sent,
    failed: outcome.failed,
    cancelled: outcome.cancelled,
    lost: outcome.lost,
    retries: outcome.retries.length,
    held: outcome.later.length,
  };
}

/** The job that delivers notifications to this audience, and the word its job ids start with. */
export function deliveryJobFor(audience: 'user' | 'ops') {
  return audience === 'ops'
    ? ({ job: OPS_ALERTS, idPrefix: 'alert' } as const)
    : ({ job: name, idPrefix: 'deliver' } as const);
}

/**
 * Puts ids on the queue in jobs of at most MAX_IDS_PER_JOB, with job ids derived from `key`, which
 * must not be made from database ids alone (a recreated database repeats them): the fan-out's keys
 * hold the event's uid, the sweeper's the deployment id. Ops alerts go to their own queue.
 */
export async function enqueueDeliveries(ctx: AppContext, ids: readonly string[], key: string): Promise<void> {
  const ops = await readOpsNotificationIds(ctx.db, ids);
  for (const audience of ['ops', 'user'] as const) {
    const { job, idPrefix } = deliveryJobFor(audience);
    const chosen = ids.filter((id) => ops.has(id) === (audience === 'ops'));
    const jobs = [];
    for (let i = 0; i < chosen.length; i += MAX_IDS_PER_JOB) {
      jobs.push({
        payload: { ids: chosen.slice(i, i + MAX_IDS_PER_JOB) },
        jobId: `${idPrefix}@${key}@${i / MAX_IDS_PER_JOB}`,
      });
    }
    await ctx.queues.enqueueBulk(job, jobs);
  }
}
