// `forewarn incidents list|show|ack|resolve`: what is open now and what opened recently, one
// incident in full (evidence, backups, messages by outcome, timeline), and ops stepping in.
import { InvalidArgumentError, Option, type Command } from 'commander';
import os from 'node:os';
import { createPool, type Pool } from '../../lib/db/pool.ts';
import { ForewarnError } from '../../lib/errors.ts';
import { listIncidents } from '../../lib/incidents/store.ts';
import { ackIncident, resolveIncident } from '../../lib/ops/actions.ts';
import { readIncidentReport } from '../../lib/ops/report.ts';
import { parsePositiveInt } from '../args.ts';
import { percent, table } from '../../lib/format.ts';
import { commandEnv } from './shared.ts';

const formatOption = () =>
  new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

/** An incident id: a whole number. */
export function parseIncidentId(value: string): string {
  if (!/^[1-9]\d{0,18}$/.test(value))
    throw new InvalidArgumentError(
      `expected an incident id (a whole number, see incidents list), got "${value}"`,
    );
  return value;
}

/** --by (default: the OS user) and --reason (required): who acts, and why, for the audit trail. */
export function whoOptions(command: Command): Command {
  return command
    .option('--by <who>', 'who does this (default: your OS user name)', nonEmpty('--by'), defaultActor())
    .requiredOption('--reason <why>', 'why (required; recorded with the action)', nonEmpty('--reason'));
}

function defaultActor(): string {
  try {
    return os.userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

function nonEmpty(option: string) {
  return (value: string): string => {
    if (value.trim() === '') throw new InvalidArgumentError(`${option}: expected some text, got nothing`);
    return value.trim();
  };
}

export async function withDb<T>(work: (db: Pool) => Promise<T>): Promise<T> {
  const { env } = commandEnv();
  const db = createPool(env.databaseUrl, { applicationName: 'forewarn-cli', max: 1 });
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

export function registerIncidents(program: Command): void {
  const incidents = program
    .command('incidents')
    .description('list and show incidents; acknowledge or resolve one by hand');
  incidents
    .command('list', { isDefault: true })
    .description('list incidents, newest first (the default: `forewarn incidents` is this)')
    .option('--open', 'only incidents that are still open', false)
    .option('--limit <n>', 'how many, 1 to 10000', parsePositiveInt, 50)
    .addOption(formatOption())
    .action(async (options: { open: boolean; limit: number; format: 'table' | 'json' }) => {
      await withDb(async (db) => {
        const found = await listIncidents(db, { openOnly: options.open, limit: options.limit });
        if (options.format === 'json') {
          process.stdout.write(`${JSON.stringify(found)}\n`);
          return;
        }
        process.stdout.write(
          `${table(
            ['id', 'detector', 'subject', 'kind', 'opened', 'resolved', 'rate', 'backups'],
            found.map((i) => [
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
      });
    });

  incidents
    .command('show')
    .description(
      'one incident: its evidence, backups, messages by outcome (sent, held, withheld and why, failed) and timeline (opened, acknowledged, messages sent, ops actions, resolved)',
    )
    .argument('<id>', 'the incident id (see incidents list)', parseIncidentId)
    .addOption(formatOption())
    .action(async (id: string, options: { format: 'table' | 'json' }) => {
      await withDb(async (db) => {
        const report = await readIncidentReport(db, id);
        if (!report)
          throw new ForewarnError(
            'FW_INCIDENT_NOT_FOUND',
            `incident ${id}: no such incident; expected an id from forewarn incidents list`,
          );
        if (options.format === 'json') {
          process.stdout.write(`${JSON.stringify(report)}\n`);
          return;
        }
        const lines = [
          `incident ${report.id}: ${report.detector} ${report.subjectKey} ${report.kind}, ${report.resolvedAt ? 'resolved' : 'open'}${report.ackedAt ? ', acknowledged' : ''}${report.fanoutStopped ? ', fan-out stopped by ops' : ''}`,
          `subject: ${JSON.stringify(report.subject)}`,
          `backups: ${report.backupChannels.join(', ') || 'none'}`,
          '',
          'evidence when opened:',
          table(
            ['field', 'value'],
            Object.entries(report.openEvidence).map(([k, v]) => [
              k,
              typeof v === 'object' ? JSON.stringify(v) : String(v),
            ]),
          ),
        ];
        if (report.resolveEvidence)
          lines.push(
            '',
            'evidence when resolved:',
            table(
              ['field', 'value'],
              Object.entries(report.resolveEvidence).map(([k, v]) => [
                k,
                typeof v === 'object' ? JSON.stringify(v) : String(v),
              ]),
            ),
          );
        lines.push(
          '',
          'messages:',
          report.messages.length === 0
            ? 'none recorded'
            : table(
                ['kind', 'audience', 'outcome', 'count'],
                report.messages.map((m) => [m.kind, m.audience, m.outcome, m.count]),
              ),
          '',
          'timeline:',
          table(
            ['at', 'what'],
            report.timeline.map((t) => [t.at.toISOString(), t.what]),
          ),
        );
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });

  whoOptions(
    incidents
      .command('ack')
      .description(
        'acknowledge an incident (recorded with who and why); it still resolves as usual and sends its recovery notices',
      )
      .argument('<id>', 'the incident id', parseIncidentId),
  ).action(async (id: string, options: { by: string; reason: string }) => {
    await withDb((db) => ackIncident(db, id, { actor: options.by, reason: options.reason }));
    process.stdout.write(`incident ${id} acknowledged by ${options.by}\n`);
  });

  whoOptions(
    incidents
      .command('resolve')
      .description(
        'resolve an open incident by hand, as its detector would: recovery notices and the ops alert go out once (the running daemon fans the event out within a sweep), and the detector opens a new incident only if later data confirms the trouble again',
      )
      .argument('<id>', 'the incident id', parseIncidentId),
  ).action(async (id: string, options: { by: string; reason: string }) => {
    const eventId = await withDb((db) =>
      resolveIncident(db, id, { actor: options.by, reason: options.reason }),
    );
    process.stdout.write(`incident ${id} resolved by ${options.by} (event ${eventId})\n`);
  });
}
