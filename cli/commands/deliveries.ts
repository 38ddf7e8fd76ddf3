// `forewarn deliveries failed`: the dead-letter view, deliveries that failed for good and why.
import { Option, type Command } from 'commander';
import { createPool } from '../../lib/db/pool.ts';
import { maskEmail, maskId } from '../../lib/logger.ts';
import { listFailedDeliveries } from '../../lib/notifications/store.ts';
import { parsePositiveInt } from '../args.ts';
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
}
