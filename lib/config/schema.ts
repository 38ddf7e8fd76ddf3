// The shape of config/forewarn.yaml: one zod schema, the single source of the config's type and
// defaults. Every key is documented in the YAML file itself and in README.md#configuration.
import { z } from 'zod';
import { detectorIds, detectorSettingsShape, registeredDetectors } from '../detection/registry.ts';
import { categories } from '../messages/kind.ts';
import { cronExpression } from './cron.ts';
import { allowPatternProblem } from '../studio/allow.ts';
import { webhooksConfigSchema } from './webhooks.ts';
import { WEEKDAYS } from '../ops/maintenance.ts';

const positiveInt = z.number().int().positive();

/**
 * The channels a user can be reached on (notifications.userChannels; ops also get webhooks):
 * push is a POST per message to the platform's SMS or push gateway (notifications.push).
 */
export const USER_CHANNELS = ['email', 'inapp', 'push'] as const;

const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' });

const wallTime = z
  .string()
  .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'expected a local time "HH:MM" from 00:00 to 23:59');

/** A channel's id as the channel column and lib/channels/registry.ts have it. */
const channelId = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]*$/,
    'expected a channel id such as "email" or "inapp" (lowercase letters, digits, "-")',
  );

/** A daily window of local times in the recipient's own zone; from after to spans midnight. */
const quietWindowSchema = z.strictObject({ from: wallTime, to: wallTime }).refine((w) => w.from !== w.to, {
  message: 'expected from and to to differ (a window of no length holds nothing)',
});

export const notificationsConfigSchema = z
  .strictObject({
    /** The platform's name as messages give it ("open the <siteName> app yourself"). */
    siteName: z.string().min(1),
    /** How users are reached; ops are always reached by email. */
    userChannels: z
      .array(z.enum(USER_CHANNELS))
      .min(1)
      .refine((list) => new Set(list).size === list.length, { message: 'expected each channel once' }),
    audience: z.strictObject({
      /** Users with a pending or timed-out attempt on the channel this recently are warned. */
      stuckWithinMinutes: positiveInt,
      /** So are users who paid with the channel (succeeded) this recently. */
      usedWithinDays: positiveInt,
    }),
    /** Recipients read and recorded per fan-out batch (keyset pagination). */
    batchSize: positiveInt.max(10_000),
    retry: z.strictObject({
      /** Sending attempts before a temporary failure is recorded as failed. */
      maxAttempts: positiveInt,
      /** Backoff: base * 2^(attempt-1), at most max, with full jitter. */
      baseDelaySeconds: z.number().positive(),
      maxDelaySeconds: z.number().positive(),
    }),
    /** How long a worker holds claimed deliveries before the sweeper may hand them to another. */
    claimSeconds: positiveInt,
    email: z.strictObject({
      from: z.string().min(3),
      /** Right-hand side of Message-IDs, e.g. "notify.example.com". */
      messageIdDomain: z
        .string()
        .regex(/^[A-Za-z0-9.-]+$/, 'expected a domain name such as "notify.example.com"'),
      maxConnections: positiveInt,
      /**
       * DKIM signing (the key itself comes from FOREWARN_DKIM_PRIVATE_KEY or ..._FILE): the d= domain
       * and the s= selector whose TXT record `<keySelector>._domainkey.<domainName>` holds the public
       * key. Absent: mail is not signed; set without a key, or a key without it, stops the start.
       */
      dkim: z
        .strictObject({
          domainName: z
            .string()
            .regex(
              /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/,
              'expected the domain signed for, such as "example.com" (the From address\'s domain or a parent of it)',
            ),
          keySelector: z
            .string()
            .regex(
              /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
              'expected a DKIM selector such as "forewarn2026" (letters, digits, "-", dot-separated)',
            ),
        })
        .optional(),
    }),
    ops: z.strictObject({
      /** Who gets incident alerts (opened and resolved) with the numbers. */
      emails: z.array(z.email()),
      locale: z.string().min(2),
      /**
       * How long the first alert of a group (the same region, the same error code) waits for the
       * others, which then go out with it as one email; 0 sends each group as soon as it is due.
       */
      groupWaitSeconds: z.number().int().min(0).max(3_600),
      /** Webhook targets (notifications.webhooks.targets, by id) that get incident alerts too. */
      webhooks: z.array(z.string()).default([]),
    }),
    links: z.strictObject({
      /** Recharge page; "{channel}" is replaced by the suggested channel's id. */
      payUrl: httpUrl,
      /** Notification settings page; forewarn appends a signed user token (see README). */
      preferencesUrl: httpUrl,
      /** A product's page (restock alerts); "{product}" is replaced by the product id. */
      productUrl: httpUrl,
      /** Where ops look at an incident; "{incidentId}" is replaced. Null: no link. */
      dashboardUrl: httpUrl.nullable(),
      /**
       * The account-security page that security check-ups may link to, on the platform's own fixed
       * domain; taken as it is (nothing is added to it). Null: check-ups carry no link at all.
       */
      securityUrl: z
        .url({ protocol: /^https$/, message: 'expected an https URL' })
        .refine((u) => !/[{}]/.test(u) && new URL(u).search === '' && new URL(u).username === '', {
          message: 'expected a fixed page address: no placeholders, query string or user name',
        })
        .nullable(),
      /** Signed links stop working after this many days. */
      ttlDays: positiveInt,
      /**
       * Unsubscribe links (List-Unsubscribe and the emails' footer) stop working after this many
       * days; longer than ttlDays, since an old mail's unsubscribe must keep working a while.
       */
      unsubscribeTtlDays: positiveInt.max(3_650, 'expected at most 3650 days (ten years)').default(60),
    }),
    /**
     * Quiet hours per category, in each recipient's own time zone (users.timezone): a message of
     * the category that comes due inside the window is held until it ends, never dropped.
     * Categories not listed are never held. An urgent message is never held either: a payment
     * warning to a user whose attempt on the channel is stuck right now.
     */
    quietHours: z.partialRecord(z.enum(categories), quietWindowSchema),
    /**
     * Frequency caps per channel: at most `perDay` messages to one user on the channel per local
     * day (midnight to midnight in the user's zone), across all kinds and watchers. A capped
     * promotional or requested message waits for the next day, a capped service warning is
     * cancelled; recovery notices, security and ops messages are counted but never held back.
     * Channels not listed are not capped.
     */
    caps: z.record(channelId, z.strictObject({ perDay: positiveInt })).default({}),
    /**
     * Sending rates per channel, shared by every replica (a token bucket in Redis that counts
     * messages, not jobs): `perSecond` on average, bursts of up to `burst` (default: perSecond).
     * A send that finds no token waits, at most `maxWaitSeconds`, then is retried later.
     */
    rates: z
      .record(
        channelId,
        z.strictObject({
          perSecond: z.number().positive(),
          burst: positiveInt.optional(),
          maxWaitSeconds: positiveInt.max(3_600).default(30),
        }),
      )
      .default({}),
    sweeper: z.strictObject({
      schedule: cronExpression,
      /** Work untouched this long (an event not fanned out, a claim not released) is picked up again. */
      staleSeconds: positiveInt,
    }),
    /** Where the webhook channel POSTs (lib/channels/webhook-channel.ts); none unless listed. */
    webhooks: webhooksConfigSchema.default({ targets: [] }),
    /**
     * The push channel (lib/channels/push-channel.ts): the webhook target, of the json format,
     * that the platform's SMS or push gateway answers. Needed when userChannels lists push.
     */
    push: z.strictObject({ target: z.string().min(1) }).optional(),
  })
  .superRefine((n, ctx) => {
    if (n.userChannels.includes('push')) {
      const target = n.webhooks.targets.find((t) => t.id === n.push?.target);
      if (n.push === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['push'],
          input: undefined,
          message:
            'expected { target: <id> } naming the webhook target of your SMS or push gateway, since userChannels lists push',
        });
      else if (target === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['push', 'target'],
          input: n.push.target,
          message: `expected the id of a target in notifications.webhooks.targets (${n.webhooks.targets.map((t) => JSON.stringify(t.id)).join(', ') || 'none is configured'})`,
        });
      else if (target.format !== 'json')
        ctx.addIssue({
          code: 'custom',
          path: ['push', 'target'],
          input: n.push.target,
          message: `expected a target of the json format (signed, carrying the user id): "${target.id}" is ${target.format}, a chat robot that would post users' messages into a group`,
        });
    }
    // An ops alert for a target nobody configured would fail at every incident.
    const known = new Set(n.webhooks.targets.map((t) => t.id));
    n.ops.webhooks.forEach((id, i) => {
      if (!known.has(id))
        ctx.addIssue({
          code: 'custom',
          path: ['ops', 'webhooks', i],
          input: id,
          message: `expected the id of a target in notifications.webhooks.targets (${known.size > 0 ? [...known].map((k) => JSON.stringify(k)).join(', ') : 'none is configured'})`,
        });
    });
  });
export type NotificationsConfig = z.infer<typeof notificationsConfigSchema>;

/** A recurring maintenance window (lib/ops/maintenance.ts): its subjects warn no users meanwhile. */
const maintenanceWindowSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a name such as "icbc-nightly" (lowercase, digits, "-")'),
    detector: z.string().min(1),
    subjects: z.array(z.string().min(1)).min(1),
    days: z
      .array(z.enum(WEEKDAYS))
      .min(1)
      .refine((list) => new Set(list).size === list.length, { message: 'expected each day once' }),
    from: wallTime,
    to: wallTime,
    timezone: z
      .string()
      .refine(isTimeZone, { message: 'expected an IANA time zone such as "Asia/Shanghai"' }),
  })
  .refine((w) => w.from !== w.to, {
    message: 'expected from and to to differ (a window of no length holds nothing)',
  });

/**
 * The watchdog (lib/watchdog/): an ops alert when a detector's ticks stop or the platform's
 * payment data lags. Runs in every process with the notifications role.
 */
export const watchdogConfigSchema = z
  .strictObject({
    /** false: no checks, no watchdog alerts. */
    enabled: z.boolean({ message: 'expected true or false' }).default(true),
    /** How often each notifications process checks (one alert per change across replicas). */
    checkEverySeconds: positiveInt.max(3_600).default(60),
    /** The newest payment_attempts row may be this far behind the platform database's clock. */
    maxDataLagSeconds: positiveInt.default(900),
    ticks: z
      .strictObject({
        /** A detector's default bound: this many gaps between its schedule's next two fires ... */
        missedFires: positiveInt.max(1_000).default(3),
        /** ... and at least this long. */
        minAgeSeconds: positiveInt.default(180),
        /** Per detector, under its config key: the bound itself, instead of the derived one. */
        maxAgeSeconds: z.record(z.string(), positiveInt).default({}),
      })
      .default({ missedFires: 3, minAgeSeconds: 180, maxAgeSeconds: {} })
      .superRefine((ticks, ctx) => {
        const known = registeredDetectors.map((d) => `${d.configKey} (${d.id})`).join(', ');
        for (const key of Object.keys(ticks.maxAgeSeconds)) {
          if (registeredDetectors.some((d) => d.configKey === key)) continue;
          const byId = registeredDetectors.find((d) => d.id === key);
          ctx.addIssue({
            code: 'custom',
            path: ['maxAgeSeconds', key],
            input: key,
            message: byId
              ? `expected the detector's config key "${byId.configKey}" (as under detectors), not its id (registered detectors: ${known})`
              : `expected one of the registered detectors: ${known}`,
          });
        }
      }),
  })
  .default({
    enabled: true,
    checkEverySeconds: 60,
    maxDataLagSeconds: 900,
    ticks: { missedFires: 3, minAgeSeconds: 180, maxAgeSeconds: {} },
  });
export type WatchdogConfig = z.infer<typeof watchdogConfigSchema>;

export const configSchema = z.strictObject({
  /** IANA zone in which cron schedules are read. */
  timezone: z.string().refine(isTimeZone, { message: 'expected an IANA time zone such as "Asia/Shanghai"' }),
  /** Each registered detector's settings, under its id in camel case (lib/detection/registry.ts). */
  detectors: z.strictObject(detectorSettingsShape()),
  notifications: notificationsConfigSchema,
  /** Jobs one process runs at once, per queue (lib/queue/queues.ts). */
  workers: z.strictObject({
    detection: z.strictObject({ concurrency: positiveInt }),
    fanout: z.strictObject({ concurrency: positiveInt }),
    delivery: z.strictObject({ concurrency: positiveInt }),
    opsAlerts: z.strictObject({ concurrency: positiveInt }),
  }),
  watchdog: watchdogConfigSchema,
  shutdown: z.strictObject({
    /** How long running jobs may take to finish after SIGTERM before the process exits anyway. */
    graceSeconds: positiveInt,
  }),
  /** The template studio (`forewarn templates studio`, /admin/studio on the HTTP role). */
  templates: z
    .strictObject({
      studio: z
        .strictObject({
          /**
           * Who a test send may go to: addresses, or patterns with * for any characters but @
           * ("*@example.com"). Checked on the server; empty: test sends are refused.
           */
          testSendAllow: z
            .array(
              z.string().superRefine((pattern, ctx) => {
                const problem = allowPatternProblem(pattern);
                if (problem) ctx.addIssue({ code: 'custom', message: problem });
              }),
            )
            .default([]),
        })
        .default({ testSendAllow: [] }),
    })
    .default({ studio: { testSendAllow: [] } }),
  /** Maintenance windows: recurring times during which the subjects named warn no users. */
  maintenance: z
    .strictObject({ windows: z.array(maintenanceWindowSchema) })
    .default({ windows: [] })
    .superRefine((m, ctx) => {
      const seen = new Set<string>();
      m.windows.forEach((w, i) => {
        if (seen.has(w.name))
          ctx.addIssue({
            code: 'custom',
            path: ['windows', i, 'name'],
            message: 'expected each window name once',
          });
        seen.add(w.name);
        if (!(detectorIds as readonly string[]).includes(w.detector))
          ctx.addIssue({
            code: 'custom',
            path: ['windows', i, 'detector'],
            message: `expected a registered detector id (${detectorIds.join(', ')})`,
            input: w.detector,
          });
      });
    }),
  backtest: z.strictObject({
    /** History replayed before --from so that baselines are learned, not assumed. */
    warmupMinutes: z.number().int().min(0),
  }),
  /** The HTTP role's ops tools (lib/http/routes/). */
  http: z
    .strictObject({
      adminQueues: z
        .strictObject({
          /** The queue dashboard shows, and refuses every action (retry, clean, pause...) while true. */
          readOnly: z.boolean({ message: 'expected true or false' }).default(true),
        })
        .default({ readOnly: true }),
    })
    .default({ adminQueues: { readOnly: true } }),
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
