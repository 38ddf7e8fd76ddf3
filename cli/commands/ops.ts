// `forewarn mute|unmute|mutes list` and `forewarn fanout stop`: ops stepping in on a subject or
// a cause. Each action is recorded with who did it (--by, default the OS user) and why (--reason).
import { InvalidArgumentError, Option, type Command } from 'commander';
import { detectorIds } from '../../lib/detection/registry.ts';
import { muteSubject, stopFanout, unmuteSubject } from '../../lib/ops/actions.ts';
import { listMutes } from '../../lib/ops/store.ts';
import { table } from '../../lib/format.ts';
import { parseIncidentId, whoOptions, withDb } from './incidents.ts';

/** "payment-health/alipay:CN-GD" → the detector and its subject key. */
export function parseSubject(value: string): { detector: string; subjectKey: string } {
  const slash = value.indexOf('/');
  const detector = slash > 0 ? value.slice(0, slash) : '';
  const subjectKey = slash > 0 ? value.slice(slash + 1) : '';
  if (!(detectorIds as readonly string[]).includes(detector) || subjectKey === '')
    throw new InvalidArgumentError(
      `expected <detector>/<subject key> such as payment-health/alipay:CN-GD (detectors: ${detectorIds.join(', ')}), got "${value}"`,
    );
  return { detector, subjectKey };
}

/** --until: an ISO 8601 time with a date and an offset, or a duration from now (30m, 2h, 1d). */
export function parseUntil(value: string, now = Date.now()): number {
  const duration = /^(\d+)(m|h|d)$/.exec(value.trim());
  if (duration) {
    const ms =
      Number(duration[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 'm' | 'h' | 'd'];
    if (ms <= 0) throw new InvalidArgumentError(`expected a positive duration, got "${value}"`);
    return now + ms;
  }
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)
    ? Date.parse(value)
    : Number.NaN;
  if (Number.isNaN(iso))
    throw new InvalidArgumentError(
      `expected a time such as 2026-03-02T10:00:00Z or +08:00, or a duration such as 30m, 2h or 1d, got "${value}"`,
    );
  if (iso <= now) throw new InvalidArgumentError(`expected a time in the future, got "${value}"`);
  return iso;
}

export function registerOps(program: Command): void {
  whoOptions(
    program
      .command('mute')
      .description(
        'warn no users about a subject until a time: its incidents are still recorded and ops still alerted; withheld warnings are recorded with the reason "muted"',
      )
      .argument('<subject>', '<detector>/<subject key>, e.g. payment-health/alipay:CN-GD', parseSubject)
      .requiredOption(
        '--until <time>',
        'an ISO 8601 time (2026-03-02T10:00:00Z) or a duration from now (30m, 2h, 1d)',
        (v) => parseUntil(v),
      ),
  ).action(
    async (
      subject: { detector: string; subjectKey: string },
      options: { until: number; by: string; reason: string },
    ) => {
      await withDb((db) =>
        muteSubject(db, subject, options.until, { actor: options.by, reason: options.reason }),
      );
      process.stdout.write(
        `${subject.detector}/${subject.subjectKey} muted until ${new Date(options.until).toISOString()} by ${options.by}\n`,
      );
    },
  );

  whoOptions(
    program
      .command('unmute')
      .description("end a subject's mute now")
      .argument('<subject>', '<detector>/<subject key>', parseSubject),
  ).action(
    async (subject: { detector: string; subjectKey: string }, options: { by: string; reason: string }) => {
      const active = await withDb((db) =>
        unmuteSubject(db, subject, { actor: options.by, reason: options.reason }),
      );
      process.stdout.write(
        `${subject.detector}/${subject.subjectKey} ${active ? 'unmuted' : 'was not muted (recorded all the same)'}\n`,
      );
    },
  );

  program
    .command('mutes')
    .description('the mutes in force')
    .command('list', { isDefault: true })
    .description('list the mutes in force, soonest to end first')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (options: { format: 'table' | 'json' }) => {
      const mutes = await withDb((db) => listMutes(db, Date.now()));
      if (options.format === 'json') {
        process.stdout.write(`${JSON.stringify(mutes)}\n`);
        return;
      }
      if (mutes.length === 0) {
        process.stdout.write('no mutes in force\n');
        return;
      }
      process.stdout.write(
        `${table(
          ['subject', 'until', 'by', 'reason'],
          mutes.map((m) => [`${m.detector}/${m.subjectKey}`, m.until.toISOString(), m.actor, m.reason]),
        )}\n`,
      );
    });

  whoOptions(
    program
      .command('fanout')
      .description("control a cause's fan-out")
      .command('stop')
      .description(
        'stop sending a cause\'s user warnings: what is not sent yet is cancelled ("stopped by ops"), fan-out batches still running write no more; messages being sent right now finish; ops alerts and later recovery notices to those already warned still go',
      )
      .argument('<cause>', 'the incident (cause) id', parseIncidentId),
  ).action(async (id: string, options: { by: string; reason: string }) => {
    const cancelled = await withDb((db) => stopFanout(db, id, { actor: options.by, reason: options.reason }));
    process.stdout.write(
      `fan-out of cause ${id} stopped by ${options.by}: ${cancelled} queued message(s) cancelled\n`,
    );
  });
}
