// `forewarn incidents`: what is open now, and what opened recently.
import { Option, type Command } from 'commander';
import { createPool } from '../../lib/db/pool.ts';
import { listIncidents } from '../../lib/incidents/store.ts';
import { parsePositiveInt } from '../args.ts';
import { percent, table } from '../../lib/format.ts';
import { commandEnv } from './shared.ts';

export function registerIncidents(program: Command): void {
  program
    .command('incidents')
    .description('list incidents, newest first')
    .option('--open', 'only incidents that are still open', false)
    .option('--limit <n>', 'how many, 1 to 10000', parsePositiveInt, 50)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (options: { open: boolean; limit: number; format: 'table' | 'json' }) => {
      const { env } = commandEnv();
      const db = createPool(env.databaseUrl, { applicationName: 'forewarn-cli', max: 1 });
      try {
        const incidents = await listIncidents(db, { openOnly: options.open, limit: options.limit });
        if (options.format === 'json') {
          process.stdout.write(`${JSON.stringify(incidents)}\n`);
          return;
        }
        process.stdout.write(
          `${table(
            ['id', 'detector', 'subject', 'kind', 'opened', 'resolved', 'rate', 'backups'],
            incidents.map((i) => [
              i.id,
              i.detector,
              Object.values(i.subject).join(' / '),
              i.kind,
              i.openedAt.toISOString(),
              i.resolvedAt?.toISOString() ?? 'open',
              typeof i.openEvidence.rate === 'number' ? percent(i.openEvidence.rate) : null,
              i.backupChannels.join(', ') || null,
            ]),
          )}\n`,
        );
      } finally {
        await db.end();
      }
    });
}
