// The config's cron expressions: one check, shared by the detectors' schedules and the sweeper's.
import cron from 'node-cron';
import { z } from 'zod';

export const cronExpression = z.string().refine((value) => cron.validate(value), {
  message: 'expected a cron expression such as "*/15 * * * * *" (second minute hour day month weekday)',
});
