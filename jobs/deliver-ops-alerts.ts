// Job: deliver ops alerts (an incident opened or resolved, a data feed gone silent). The same
// steps as every delivery (jobs/deliver-notifications.ts), on a queue and an SMTP connection of
// their own, so that an alert never waits behind a backlog of user email.
import type { z } from 'zod';
import type { AppContext } from '../lib/context.ts';
import { defaultOptions, deliverBatch, payload, type DeliveryJobResult } from './deliver-notifications.ts';

export const name = 'deliver-ops-alerts';
export const queue = 'ops-alerts';
export { defaultOptions, payload };

export async function handle(data: z.infer<typeof payload>, ctx: AppContext): Promise<DeliveryJobResult> {
  return deliverBatch(ctx, data.ids, { job: name, email: ctx.opsEmail });
}
