// The shape of config/forewarn.yaml: one zod schema, the single source of the config's type and
// defaults. Every key is documented in the YAML file itself and in README.md#configuration.
import cron from 'node-cron';
import { z } from 'zod';
import {
  paymentHealthOverridesSchema,
  paymentHealthThresholdsSchema,
} from '../../detectors/payment-health/thresholds.ts';

const cronExpression = z.string().refine((value) => cron.validate(value), {
  message: 'expected a cron expression such as "*/15 * * * * *" (second minute hour day month weekday)',
});

const positiveInt = z.number().int().positive();

export const paymentHealthConfigSchema = paymentHealthThresholdsSchema.extend({
  enabled: z.boolean(),
  schedule: cronExpression,
  overrides: paymentHealthOverridesSchema,
});
export type PaymentHealthConfig = z.infer<typeof paymentHealthConfigSchema>;

export const configSchema = z.strictObject({
  /** IANA zone in which cron schedules are read. */
  timezone: z.string().refine(isTimeZone, { message: 'expected an IANA time zone such as "Asia/Shanghai"' }),
  detectors: z.strictObject({
    paymentHealth: paymentHealthConfigSchema,
  }),
  workers: z.strictObject({
    detection: z.strictObject({ concurrency: positiveInt }),
  }),
  shutdown: z.strictObject({
    /** How long running jobs may take to finish after SIGTERM before the process exits anyway. */
    graceSeconds: positiveInt,
  }),
  backtest: z.strictObject({
    /** History replayed before --from so that baselines are learned, not assumed. */
    warmupMinutes: z.number().int().min(0),
  }),
});
export type Config = z.infer<typeof configSchema>;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
