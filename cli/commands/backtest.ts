// `forewarn backtest`: replay a detector over stored history to see what would have fired.
import { Option, type Command } from 'commander';
import { createPool } from '../../lib/db/pool.ts';
import type { Detector } from '../../lib/detection/detector.ts';
import { registeredDetectors } from '../../lib/detection/registry.ts';
import { UsageError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { parseChoice, parseDuration, parseTime } from '../args.ts';
import { commandConfig, commandEnv } from './shared.ts';

/** The registered detectors that can replay stored history. */
const replayable = registeredDetectors.filter((d) => d.backtest !== undefined);

export function registerBacktest(program: Command): void {
  program
    .command('backtest')
    .description(
      'replay a detector over stored history, tick by tick, with the live code; never sends or writes',
    )
    .requiredOption(
      '--detector <name>',
      `detector to replay: ${replayable.map((d) => d.id).join(', ')}`,
      parseChoice(replayable.map((d) => d.id)),
    )
    .requiredOption('--from <time>', 'start of the replay, ISO 8601 (e.g. 2026-03-02T00:00:00Z)', parseTime)
    .requiredOption('--to <time>', 'end of the replay, ISO 8601', parseTime)
    .option('--step <duration>', 'time between ticks (multiple of 5s)', parseDuration, 15_000)
    .option('--config <file>', 'config file with the thresholds to try (default: $FOREWARN_CONFIG)')
    .addOption(
      new Option('--format <format>', 'json: one array on stdout; table: a summary for people')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action(
      async (options: {
        detector: string;
        from: number;
        to: number;
        step: number;
        config?: string;
        format: 'table' | 'json';
      }) => {
        if (options.to <= options.from) throw new UsageError('--to: expected a time after --from');
        if (options.step % 5_000 !== 0)
          throw new UsageError(`--step: expected a multiple of 5s, got ${options.step / 1000}s`);
        const { env, logger } = commandEnv();
        const config = await commandConfig(env, options.config);
        const db = createPool(env.platformDatabaseUrl, { applicationName: 'forewarn-backtest', max: 3 });
        const progress = progressPrinter();
        try {
          const detector = replayable.find((d) => d.id === options.detector)!;
          const storedState = await readStoredState(env.databaseUrl, detector, logger);
          const report = await detector.backtest!({
            platformDb: db,
            schema: env.platformSchema,
            settings: detector.settingsOf(config),
            fromMs: options.from,
            toMs: options.to,
            stepMs: options.step,
            warmupMs: config.backtest.warmupMinutes * 60_000,
            storedState,
            onProgress: progress,
          });
          if (process.stderr.isTTY) process.stderr.write('\n');
          for (const row of report.skippedSample) {
            logger.warn(
              {
                component: 'backtest',
                code: 'FW_PLATFORM_ROW_INVALID',
                table: row.table,
                rowId: row.id,
                reason: row.reason,
              },
              `skipped ${row.table} row ${row.id}: ${row.reason}`,
            );
          }
          logger.info({ component: 'backtest', detector: detector.id, ...report.stats }, 'backtest finished');
          if (options.format === 'json') {
            process.stdout.write(`${JSON.stringify(report.incidents)}\n`);
          } else {
            process.stdout.write(report.summary);
          }
        } finally {
          await db.end();
        }
      },
    );
}

/**
 * The live daemon's detector state, if forewarn's database has one: the replay starts from its
 * learned baselines. A missing database or schema just means there is none; any other failure
 * (unreachable, refused) is said at warn level, since the baselines then come from a warm-up.
 */
async function readStoredState(databaseUrl: string, detector: Detector, logger: Logger): Promise<unknown> {
  const db = createPool(databaseUrl, { applicationName: 'forewarn-backtest', max: 1 });
  try {
    // What a stored state holds (and whether it has baselines yet) is the detector's to say.
    return await detector.readStoredState(db);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // 3D000: no such database; 3F000 / 42P01: no forewarn schema or table (never migrated).
    const absent = code === '3D000' || code === '3F000' || code === '42P01';
    if (absent) {
      logger.debug(
        { component: 'backtest', code },
        'no stored detector state; baselines come from the warm-up',
      );
    } else {
      logger.warn(
        { component: 'backtest', err: error, code: 'FW_BACKTEST_STATE_UNREADABLE' },
        `could not read the stored detector state (${(error as Error).message}); baselines come from the warm-up instead`,
      );
    }
    return null;
  } finally {
    await db.end();
  }
}

/** A one-line progress indicator on stderr: redrawn in place on a terminal, every 10% in a log. */
function progressPrinter(): (p: { ticksDone: number; ticksTotal: number }) => void {
  let lastPercent = -1;
  let lastTenth = -1;
  return ({ ticksDone, ticksTotal }) => {
    const pct = Math.floor((100 * ticksDone) / Math.max(1, ticksTotal));
    const line = `replaying: ${ticksDone}/${ticksTotal} ticks (${pct}%)`;
    if (process.stderr.isTTY) {
      if (pct !== lastPercent) process.stderr.write(`\r${line}`);
    } else if (Math.floor(pct / 10) > lastTenth) {
      lastTenth = Math.floor(pct / 10);
      process.stderr.write(`${line}\n`);
    }
    lastPercent = pct;
  };
}
