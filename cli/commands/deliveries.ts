// `forewarn deliveries`: failed (the dead-letter view, deliveries that failed for good and why),
// stats (what became of the messages recorded lately) and why (what one user got, and what was
// held back and why).
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createPool } from '../../lib/db/pool.ts';
import { maskEmail, maskId, maskText } from '../../lib/logger.ts';
import { listFailedDeliveries } from '../../lib/notifications/store.ts';
import { countOutcomes, listUserDeliveries, type OutcomeCount } from '../../lib/notifications/reports.ts';
import { parseAge, parsePositiveInt } from '../args.ts';
import { table } from '../../lib/format.ts';
import { commandEnv } from './shared.ts';

export function registerDeliveries(program: Command): void {
  const deliveries = program.command('deliveries').description('inspect notification deliveries');
  deliveries
    .command('failed')
    .description(
      'list deliveries that failed permanently or ran out of retries, newest first, with the reason',
    )
    .option('--limit <n>', 'how many, 1 to 10000', parsePositiveInt, 50)
    .option('--show-addresses', 'print user ids and addresses in full (they are masked by default)', false)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (options: { limit: number; showAddresses: boolean; format: 'table' | 'json' }) => {
      const { env } = commandEnv();
      const db = createPool(env.databaseUrl, { applicationName: 'forewarn-cli', max: 1 });
      try {
        const failed = await listFailedDeliveries(db, options.limit);
        const who = (userId: string | null, address: string | null) => ({
          userId: userId && !options.showAddresses ? maskId(userId) : userId,
          address: address && !options.showAddresses ? maskEmail(address) : address,
        });
        if (options.format === 'json') {
          for (const f of failed)
            process.stdout.write(`${JSON.stringify({ ...f, ...who(f.userId, f.address) })}\n`);
          return;
        }
        if (failed.length === 0) {
          process.stdout.write('no failed deliveries\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['id', 'failed at', 'kind', 'channel', 'to', 'attempts', 'reason'],
            failed.map((f) => {
              const w = who(f.userId, f.address);
              return [
                f.id,
                f.failedAt?.toISOString() ?? null,
                f.kind,
                f.channel,
                w.address ?? w.userId,
                f.attempts,
                f.reason,
              ];
            }),
          )}\n${failed.length} failed deliver${failed.length === 1 ? 'y' : 'ies'}\n`,
        );
      } finally {
        await db.end();
      }
    });
  registerStats(deliveries);
  registerWhy(deliveries);
}

const formatOption = () =>
  new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

function registerStats(deliveries: Command): void {
  deliveries
    .command('stats')
    .description(
      'count the messages recorded lately by kind, channel and outcome: sent, held (quiet hours, capped, until when), withheld (opted out, suppressed, capped, no address), cancelled as stale, failed',
    )
    .option(
      '--since <duration>',
      'how far back, by when they were recorded: 30m, 24h, 7d',
      parseAge,
      86_400_000,
    )
    .addOption(formatOption())
    .action(async (options: { since: number; format: 'table' | 'json' }) => {
      const { env } = commandEnv();
      const db = createPool(env.databaseUrl, { applicationName: 'forewarn-cli', max: 1 });
      try {
        const counts = await countOutcomes(db, options.since);
        const totals = totalsByOutcome(counts);
        if (options.format === 'json') {
          process.stdout.write(`${JSON.stringify({ sinceMs: options.since, counts, totals })}\n`);
          return;
        }
        if (counts.length === 0) {
          process.stdout.write('no messages recorded in that time\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['kind', 'channel', 'outcome', 'count', 'due'],
            counts.map((c) => [c.kind, c.channel, c.outcome, c.count, dueRange(c)]),
          )}\n\n${table(
            ['outcome', 'count'],
            Object.entries(totals).map(([outcome, count]) => [outcome, count]),
          )}\n`,
        );
      } finally {
        await db.end();
      }
    });
}

function totalsByOutcome(counts: readonly OutcomeCount[]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const c of counts) totals[c.outcome] = (totals[c.outcome] ?? 0) + c.count;
  return totals;
}

function dueRange(c: OutcomeCount): string | null {
  if (!c.dueFrom || !c.dueTo) return null;
  const from = c.dueFrom.toISOString();
  const to = c.dueTo.toISOString();
  return from === to ? from : `${from} .. ${to}`;
}

function registerWhy(deliveries: Command): void {
  deliveries
    .command('why')
    .description(
      'what one user got and what was held back, and why: each message, newest first, with its outcome, reason, dedupe key and cause (addresses are masked)',
    )
    .argument('<user>', 'the user id')
    .option(
      '--since <duration>',
      'how far back, by when they were recorded: 30m, 24h, 7d',
      parseAge,
      7 * 86_400_000,
    )
    .option('--limit <n>', 'how many, 1 to 10000', parseLimit, 50)
    .option('--before <id>', 'the next page: messages older than this notification id', parseId)
    .addOption(formatOption())
    .action(
      async (
        userId: string,
        options: { since: number; limit: number; before?: string; format: 'table' | 'json' },
      ) => {
        const { env } = commandEnv();
        const db = createPool(env.databaseUrl, { applicationName: 'forewarn-cli', max: 1 });
        try {
          const found = await listUserDeliveries(db, userId, {
            sinceMs: options.since,
            // One more than shown: whether there is a next page.
            limit: options.limit + 1,
            before: options.before ?? null,
          });
          const page = found.slice(0, options.limit);
          // The operator asked for this user, so the id stays; addresses are masked as in the logs.
          const shown = page.map((d) => ({
            ...d,
            address: d.address === null ? null : maskEmail(d.address),
            reason: d.reason === null ? null : maskText(d.reason),
            dedupeKey: maskText(d.dedupeKey),
          }));
          const more = found.length > options.limit ? page[page.length - 1]!.id : null;
          if (options.format === 'json') {
            for (const d of shown) process.stdout.write(`${JSON.stringify(d)}\n`);
            return;
          }
          if (shown.length === 0) {
            process.stdout.write(`no messages for ${userId} in that time\n`);
            return;
          }
          process.stdout.write(
            `${table(
              [
                'id',
                'recorded at',
                'kind',
                'category',
                'channel',
                'to',
                'outcome',
                'due',
                'reason',
                'dedupe key',
              ],
              shown.map((d) => [
                d.id,
                d.recordedAt.toISOString(),
                d.kind,
                d.category,
                d.channel,
                d.address,
                d.outcome,
                d.dueAt?.toISOString() ?? null,
                d.reason,
                d.dedupeKey,
              ]),
            )}\n${shown.length} message${shown.length === 1 ? '' : 's'}${
              more ? `; more with --before ${more}` : ''
            }\n`,
          );
        } finally {
          await db.end();
        }
      },
    );
}

function parseLimit(value: string): number {
  const n = parsePositiveInt(value);
  if (n > 10_000) throw new InvalidArgumentError(`expected at most 10000, got "${value}"`);
  return n;
}

function parseId(value: string): string {
  if (!/^[1-9]\d{0,18}$/.test(value))
    throw new InvalidArgumentError(`expected a notification id (a whole number), got "${value}"`);
  return value;
}
