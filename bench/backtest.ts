// Benchmark: replaying one simulated day (about 1.4 million attempts over 30 channel-region
// pairs) with `forewarn backtest`, next to reading the same rows raw with `psql \copy`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { backtestPaymentHealth } from '../lib/backtest/payment-health.ts';
import { loadConfigFile } from '../lib/config/load.ts';
import { copyAttempts, seedPlatform } from '../sim/load.ts';
import { referencePlatform } from '../sim/platform.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import { generateAttempts, type Scenario } from '../sim/traffic.ts';
import { benchDatabase, figure, timed, type BenchResult } from './support.ts';

const run = promisify(execFile);
const DAY_START = Date.parse('2026-03-01T16:00:00Z'); // 2026-03-02 00:00 in Beijing
const DAY_END = DAY_START + 24 * 3_600_000;

export async function benchBacktest(): Promise<BenchResult> {
  const config = await loadConfigFile('config/forewarn.yaml');
  const db = await benchDatabase('forewarn_bench_backtest');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const platform = referencePlatform();
  const warmupMs = config.backtest.warmupMinutes * 60_000;
  // A day plus the warm-up and the longest window before it, with two incidents to find.
  const scenarios: Scenario[] = [
    {
      channel: 'wechat_pay',
      region: 'CN-GD',
      from: DAY_START + 10 * 3_600_000,
      to: DAY_START + 10.25 * 3_600_000,
      effect: { type: 'outage' },
    },
    {
      channel: 'alipay',
      region: 'CN-SH',
      from: DAY_START + 20 * 3_600_000,
      to: DAY_START + 20.5 * 3_600_000,
      effect: { type: 'slow', latencyMs: 40_000 },
    },
  ];
  let rows = 0;
  try {
    await createPlatformSchema(client, 'platform', { reset: true });
    await seedPlatform(client, 'platform', platform, []);
    const load = await timed(async () => {
      rows = await copyAttempts(
        client,
        'platform',
        generateAttempts({
          platform,
          from: DAY_START - warmupMs - 2 * 3_600_000,
          to: DAY_END,
          seed: 2026,
          scenarios,
        }),
      );
      await client.query('ANALYZE platform.payment_attempts');
    });
    const { rows: counted } = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM platform.payment_attempts WHERE created_at >= $1 AND created_at < $2',
      [new Date(DAY_START), new Date(DAY_END)],
    );
    const dayRows = Number(counted[0]!.n);

    // The raw read ops would compare with: every row of the replayed range, through psql.
    const rawRange = `created_at >= '${new Date(DAY_START - warmupMs - 3_600_000).toISOString()}' AND created_at < '${new Date(DAY_END).toISOString()}'`;
    const raw = await timed(() =>
      run('psql', [
        db.url,
        '-qc',
        `\\copy (SELECT * FROM platform.payment_attempts WHERE ${rawRange}) TO '/dev/null'`,
      ]),
    );

    const pool = new pg.Pool({ connectionString: db.url, max: 3 });
    let report: Awaited<ReturnType<typeof backtestPaymentHealth>> | undefined;
    const inProcess = await timed(async () => {
      report = await backtestPaymentHealth({
        platformDb: pool,
        schema: 'platform',
        settings: config.detectors.paymentHealth,
        fromMs: DAY_START,
        toMs: DAY_END,
        stepMs: 15_000,
        warmupMs,
      });
    });
    await pool.end();

    // The whole command as ops run it, process start-up included.
    const cli = await timed(() =>
      run(
        process.execPath,
        [
          'bin/forewarn.js',
          'backtest',
          '--detector',
          'payment-health',
          '--from',
          new Date(DAY_START).toISOString(),
          '--to',
          new Date(DAY_END).toISOString(),
          '--format',
          'json',
        ],
        { env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, maxBuffer: 64 * 1024 * 1024 },
      ),
    );
    const cliIncidents = (JSON.parse(cli.value.stdout) as unknown[]).length;

    return {
      name: 'backtest: one day of payment attempts',
      figures: [
        figure('attempts in the replayed day', dayRows, 'rows'),
        figure('attempts loaded (with warm-up)', rows, 'rows'),
        figure('load with COPY', load.ms / 1000, 's'),
        figure('raw read, psql \\copy to /dev/null', raw.ms / 1000, 's'),
        figure('backtest in process: streamed read and replay', report!.elapsedMs / 1000, 's'),
        figure('backtest in process: total', inProcess.ms / 1000, 's'),
        figure('ticks replayed (15 s step)', report!.ticks, 'ticks'),
        figure('`forewarn backtest --format json`, whole command', cli.ms / 1000, 's'),
        figure('incidents found', cliIncidents, 'incidents'),
      ],
      notes: [`target: one day in under 20 s; psql \\copy of the same rows is the floor`],
    };
  } finally {
    await client.end();
    await db.drop();
  }
}
