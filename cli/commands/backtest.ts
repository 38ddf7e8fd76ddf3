// `forewarn backtest`: replay a detector over stored history to see what would have fired.
import { stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { renderReportHtml, type ReportRun } from '../../lib/backtest/report-html.ts';
import type { Config } from '../../lib/config/schema.ts';
import type { Env } from '../../lib/env.ts';
import { createPool, type Pool } from '../../lib/db/pool.ts';
import type { Detector } from '../../lib/detection/detector.ts';
import { registeredDetectors } from '../../lib/detection/registry.ts';
import { ForewarnError, UsageError } from '../../lib/errors.ts';
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
      new Option(
        '--format <format>',
        'json: one array on stdout; table: a summary for people; html: a page with charts (needs --out)',
      )
        .choices(['table', 'json', 'html'])
        .default('table'),
    )
    .option('--out <file>', 'with --format html: where to write the page (self-contained, opens offline)')
    .option(
      '--compare <file>',
      "with --format html: replay again with this config and show both runs' incidents side by side",
    )
    .action(
      async (options: {
        detector: string;
        from: number;
        to: number;
        step: number;
        config?: string;
        format: 'table' | 'json' | 'html';
        out?: string;
        compare?: string;
      }) => {
        if (options.to <= options.from) throw new UsageError('--to: expected a time after --from');
        if (options.step % 5_000 !== 0)
          throw new UsageError(`--step: expected a multiple of 5s, got ${options.step / 1000}s`);
        if (options.format === 'html' && options.out === undefined)
          throw new UsageError(
            '--format html: expected --out <file>, the page to write (e.g. --out report.html)',
          );
        if (options.format !== 'html' && options.out !== undefined)
          throw new UsageError(
            `--out: only with --format html (got --format ${options.format}); json and table go to stdout`,
          );
        if (options.format !== 'html' && options.compare !== undefined)
          throw new UsageError(`--compare: only with --format html (got --format ${options.format})`);
        if (options.out !== undefined) await checkWritableDir(options.out);
        const { env, logger } = commandEnv();
        const config = await commandConfig(env, options.config);
        const compared = options.compare === undefined ? null : await compareConfig(env, options.compare);
        const db = createPool(env.platformDatabaseUrl, { applicationName: 'forewarn-backtest', max: 3 });
        try {
          const detector = replayable.find((d) => d.id === options.detector)!;
          const storedState = await readStoredState(env.databaseUrl, detector, logger);
          const replay = (runConfig: Config) =>
            runBacktest(detector, db, env.platformSchema, runConfig, storedState, options);
          const report = await replay(config);
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
          if (options.format === 'html') {
            const runs: ReportRun[] = [
              { config: options.config ?? env.configPath, part: report.report!, ticks: report.ticks },
            ];
            if (compared) {
              const other = await replay(compared);
              logger.info(
                { component: 'backtest', detector: detector.id, config: options.compare, ...other.stats },
                'backtest of --compare finished',
              );
              runs.push({ config: options.compare!, part: other.report!, ticks: other.ticks });
            }
            const html = renderReportHtml({
              detector: detector.id,
              fromMs: options.from,
              toMs: options.to,
              stepMs: options.step,
              generatedAt: Date.now(),
              runs: runs as [ReportRun] | [ReportRun, ReportRun],
            });
            await writeFile(options.out!, html);
            process.stdout.write(
              `wrote ${options.out} (${(Buffer.byteLength(html) / 1024 / 1024).toFixed(2)} MB): ` +
                `${runs.map((r) => `${r.part.incidents.length} incident(s)`).join(' vs ')}\n`,
            );
          } else if (options.format === 'json') {
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

/** One replay of the detector with one config; with --format html it records the report's series. */
async function runBacktest(
  detector: Detector,
  db: Pool,
  schema: string,
  config: Config,
  storedState: unknown,
  options: { from: number; to: number; step: number; format: string },
) {
  const report = await detector.backtest!({
    platformDb: db,
    schema,
    settings: detector.settingsOf(config),
    fromMs: options.from,
    toMs: options.to,
    stepMs: options.step,
    warmupMs: config.backtest.warmupMinutes * 60_000,
    storedState,
    onProgress: progressPrinter(),
    ...(options.format === 'html' ? { report: {} } : {}),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  return report;
}

/** The --compare config, its errors said as --compare's (the run's own config is --config's). */
async function compareConfig(env: Env, file: string): Promise<Config> {
  try {
    return await commandConfig(env, file);
  } catch (error) {
    if (error instanceof ForewarnError) {
      error.message = `--compare: ${error.message}`;
    }
    throw error;
  }
}

/** Refuses an --out in a folder that does not exist before replaying, not after. */
async function checkWritableDir(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  const found = await stat(dir).catch(() => null);
  if (!found?.isDirectory())
    throw new UsageError(`--out ${out}: expected a file in an existing folder; ${dir} is not a folder`);
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
