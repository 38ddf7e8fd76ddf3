// Job: deliver ops alerts (an incident opened or resolved, a data feed gone silent). The same
// steps as every delivery (jobs/deliver-notifications.ts), on a queue and an SMTP connection of
// their own, so that an alert never waits behind a backlog of user email. Alerts whose kind groups
// them (a group key: the same region, the same error code) wait for their group and go out as
// one email (lib/notifications/deliver-groups.ts); this job then comes back when the group is
// due. Alerts without a key go at once.
import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { AppContext } from '../lib/context.ts';
import { deliverOpsGroups } from '../lib/notifications/deliver-groups.ts';
import { holdRule } from '../lib/notifications/policy.ts';
import { sendingRates } from '../lib/notifications/rates.ts';
import { readOpsGroups } from '../lib/notifications/ops-groups.ts';
import {
  defaultOptions,
  deliverBatch,
  MAX_IDS_PER_JOB,
  payload,
  type DeliveryJobResult,
} from './deliver-notifications.ts';

export const name = 'deliver-ops-alerts';
export const queue = 'ops-alerts';
export { defaultOptions, payload };

/** What the job returns: a delivery's counts, and the alerts it left waiting for their group. */
export interface OpsAlertsJobResult extends DeliveryJobResult {
  held: number;
}

/**
 * A job that comes back when a group is due fires this much after it, so that the database
 * (whose clock decides) finds the group due; if it still comes early, the sweeper has it.
 */
const DUE_MARGIN_MS = 250;

/** Jobs queued for a time: their stable ids are free again once done, whichever way. */
const ONCE: JobsOptions = { removeOnComplete: true, removeOnFail: true };

export async function handle(data: z.infer<typeof payload>, ctx: AppContext): Promise<OpsAlertsJobResult> {
  const { ungrouped, groups } = await readOpsGroups(ctx.db, data.ids);
  const single =
    ungrouped.length > 0
      ? await deliverBatch(ctx, ungrouped, { job: name, email: ctx.opsEmail })
      : { claimed: 0, sent: 0, failed: 0, cancelled: 0, lost: 0, retries: 0 };
  const grouped = await deliverOpsGroups(
    {
      db: ctx.db,
      config: ctx.config,
      logger: ctx.logger,
      templates: await ctx.templates(),
      channels: { email: ctx.opsEmail },
      workerId: ctx.workerId,
      hold: holdRule(ctx.config()),
      rates: sendingRates(ctx.redis, ctx.queues.prefix, ctx.config),
    },
    groups,
  );
  // One job per group and due time (the alerts of a group share both), whoever queues it; the
  // deployment id keeps a recreated database's ids apart. If it is lost, the sweeper finds the
  // held rows once they are due.
  await ctx.queues.enqueueBulk(name, [
    ...grouped.held.map((h) => ({
      // Any live member brings the whole group; a job carries at most MAX_IDS_PER_JOB of them.
      payload: { ids: h.ids.slice(0, MAX_IDS_PER_JOB) },
      jobId: `group@${ctx.deploymentId}@${h.ids[0]}@${h.dueAt}`,
      options: { ...ONCE, delay: Math.max(0, h.dueAt - h.now) + DUE_MARGIN_MS },
    })),
    ...grouped.retries.map((r) => ({
      payload: { ids: r.ids.slice(0, MAX_IDS_PER_JOB) },
      jobId: `retry@${ctx.deploymentId}@group-${r.ids[0]}@${r.retryAt}`,
      options: { ...ONCE, delay: Math.max(0, r.retryAt - Date.now()) },
    })),
  ]);
  return {
    claimed: single.claimed + grouped.claimed,
    sent: single.sent + grouped.sent,
    failed: single.failed + grouped.failed,
    cancelled: single.cancelled + grouped.withheld,
    lost: single.lost + grouped.lost,
    retries: single.retries + grouped.retries.reduce((n, r) => n + r.ids.length, 0),
    held: grouped.held.reduce((n, h) => n + h.ids.length, 0),
  };
}
