// Benchmark: the inactivity watcher's paged pass (inactivity.run) over a large user base, next to
// raw baselines: the same idle users read through the same index (users_idle_since_idx) with a
// bare keyset SELECT page by page from node-pg, and by `psql` in one statement. A quarter of the
// users are idle between 3 and 365 days (a fifth of them never signed in); the rest were active
// within the last 3 days, but for a few disabled or deleted ones and some who never signed in and
// signed up over a year ago (past maxIdleDays). Pacing is set out of the way, so the first pass
// records a check-up for every idle user (a cause, its outbox event and a state row each), all in
// one transaction; the second pass, a minute later, is the steady state (nothing new, the sweep
// over every remembered period included), run once with forewarn's tables as the first pass left
// them and once after ANALYZE (what autovacuum does meanwhile, where it runs). Beside them,
// "decide only": the pass's reads and its pure detector (readIdleUserPage,
// readSubjectStatesBetween and readSubjectStates, detectInactivity) with nothing written, and the
// time the pass's statements took, by statement; and the floor of the first pass's writes: the
// same causes, outbox events and states made by INSERT ... SELECT in `psql` alone.
//
// Memory: the pass reads one page of users at a time and keeps a few of its changes in full, so
// a pass should hold about the same heap at 5,000,000 users as at 1,000,000. Each measurement runs in a child process of its
// own (this file, run with `child`), so its peak RSS is its own, not the loader's.
//
// Sizes: BENCH_INACTIVITY_USERS (1000000,5000000); the node-pg baseline, decide only and the
// breakdown run at the first size only, the rest at each. BENCH_INACTIVITY_PAGE: users per page
// (default: the shipped detectors.inactivity.pageSize). BENCH_INACTIVITY_PASS_LIMIT_S (240): a
// measurement still running after that many seconds is stopped (its transaction rolled back) and
// reported as far as it got, so that the bench ends in bounded time.
import { execFile, fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { detectInactivity, type InactivityState } from '../detectors/inactivity/index.ts';
import { loadConfigFile } from '../lib/config/load.ts';
import type { Config } from '../lib/config/schema.ts';
import { migrate } from '../lib/db/migrate.ts';
import { inactivity, inactivityConfigSchema } from '../lib/detection/inactivity-tick.ts';
import { CHANGES_KEPT_IN_FULL } from '../lib/detection/paged.ts';
import { readSubjectStates, readSubjectStatesBetween } from '../lib/incidents/store.ts';
import { createLogger } from '../lib/logger.ts';
import { readIdleUserPage } from '../lib/platform/inactive-users.ts';
import { InvalidRowReporter } from '../lib/platform/invalid-rows.ts';
import { isTimeZone } from '../lib/policy/quiet-hours.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import {
  benchDatabase,
  figure,
  positiveIntFromEnv,
  positiveIntsFromEnv,
  timed,
  watchMemory,
  type BenchResult,
  type Figure,
} from './support.ts';

const SCHEMA = 'platform';
const CONFIG_FILE = fileURLToPath(new URL('../config/forewarn.yaml', import.meta.url));
const SCRIPT = fileURLToPath(import.meta.url);
const MINUTE = 60_000;
const DAY = 86_400_000;
/** Pacing out of the way: a pass records every check-up due. */
const REMINDERS_PER_MINUTE = 100_000_000;
/** What the issue asks of a pass over 1,000,000 users (250,000 of them due a check-up). */
const TARGET_PASS_MS = 5_000;

interface Measured {
  ms: number;
  peakRssMb: number;
  peakLiveHeapMb: number;
  liveHeapAfterMb: number;
  /** Idle users read. */
  rows: number;
  /** Cause changes recorded (a stopped pass: outbox events written in its uncommitted transaction). */
  changes: number;
  pages: number;
  /** Stopped at the time limit: the figures are as far as it got. */
  stopped?: boolean;
  /** Statement time by statement, when asked for. */
  statements?: Array<{ name: string; calls: number; ms: number }>;
}

export async function benchInactivity(): Promise<BenchResult> {
  const sizes = positiveIntsFromEnv('BENCH_INACTIVITY_USERS', [1_000_000, 5_000_000]);
  const shipped = (await loadConfigFile(CONFIG_FILE)).detectors.inactivity;
  const pageSize = positiveIntFromEnv('BENCH_INACTIVITY_PAGE', shipped.pageSize);
  inactivityConfigSchema.parse({ ...shipped, pageSize }); // at most 20,000, as the daemon allows
  const limitMs = positiveIntFromEnv('BENCH_INACTIVITY_PASS_LIMIT_S', 240) * 1000;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000);
  let autovacuum = '';

  for (const [index, users] of sizes.entries()) {
    const detailed = index === 0;
    const db = await benchDatabase('fw_bench_inactivity');
    try {
      await migrate(db.url, createLogger({ level: 'warn' }));
      const load = await timed(() => loadUsers(db.url, users));
      autovacuum = load.value;
      const n = `${fmt(users)} users`;
      figures.push(figure(`${n}: load (INSERT ... SELECT, index, VACUUM ANALYZE)`, load.ms / 1000, 's'));
      // Minute ticks in the recent past: a tick may not lie ahead of the database's clock.
      const tickAt = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
      const base = { url: db.url, tickAt, pageSize, limitMs };
      const measure = (label: string, m: Measured, counts: 'read' | 'pass') => {
        const at = `${n}, ${label}`;
        const stopped = m.stopped ? ` (stopped at ${fmt(limitMs / 1000)} s)` : '';
        figures.push(figure(`${at}${stopped}`, Math.round(m.ms), 'ms'));
        if (counts === 'pass' && !m.stopped)
          figures.push(figure(`${at}: users in the table per second`, perSecond(users, m.ms), '/s'));
        figures.push(figure(`${at}: idle users read per second`, perSecond(m.rows, m.ms), '/s'));
        if (counts === 'pass' && m.changes > 0)
          figures.push(figure(`${at}: check-ups recorded per second`, perSecond(m.changes, m.ms), '/s'));
        figures.push(
          figure(`${at}: peak RSS`, m.peakRssMb, 'MiB'),
          figure(`${at}: peak live heap`, m.peakLiveHeapMb, 'MiB'),
        );
        if (counts === 'pass')
          figures.push(figure(`${at}: live heap at the end (collected)`, m.liveHeapAfterMb, 'MiB'));
      };

      if (detailed) {
        const raw = await inChild({ ...base, type: 'raw' });
        measure('raw keyset SELECT of the idle users, node-pg', raw, 'read');
        if (raw.stopped)
          notes.push(`${n}: the raw keyset SELECT read ${fmt(raw.rows)} idle users before it was stopped`);
      }
      const viaPsql = await psqlRead(db.url, tickAt, shipped);
      figures.push(
        figure(`${n}, psql reading the same rows in one SELECT`, Math.round(viaPsql.ms), 'ms'),
        figure(`${n}, psql: idle users read per second`, perSecond(viaPsql.rows, viaPsql.ms), '/s'),
      );
      if (detailed) {
        notes.push(`psql's plan (no LIMIT): ${viaPsql.plan}`);
        const decide = await inChild({ ...base, type: 'decide' });
        measure('decide only (page reads, state lookups, detect; nothing written)', decide, 'read');
      }

      const first = await inChild({ ...base, type: 'tick', breakdown: detailed });
      measure('first pass (every idle user due a check-up)', first, 'pass');
      if (detailed && first.changes > 0) {
        const floorMs = await psqlWriteFloor(db.url, first.changes);
        figures.push(
          figure(
            `${n}, psql writing the first pass's ${fmt(first.changes)} causes, events and states alone (INSERT ... SELECT)`,
            Math.round(floorMs),
            'ms',
          ),
          figure(`${n}, psql writing them: check-ups per second`, perSecond(first.changes, floorMs), '/s'),
        );
      }
      const passes: Array<[string, Measured]> = [['first pass', first]];
      if (first.stopped) {
        notes.push(
          `${n}: the first pass was stopped after ${fmt(first.ms / 1000)} s, having read ${fmt(first.rows)} of ${fmt(viaPsql.rows)} idle users and written ${fmt(first.changes)} check-ups (rolled back); no steady pass without a committed first one`,
        );
      } else {
        const steady = await inChild({ ...base, type: 'tick', tickAt: tickAt + MINUTE, breakdown: detailed });
        measure('steady pass (nothing new, sweep included)', steady, 'pass');
        await analyzeForewarn(db.url);
        const analysed = await inChild({
          ...base,
          type: 'tick',
          tickAt: tickAt + 2 * MINUTE,
          breakdown: detailed,
        });
        measure('steady pass after ANALYZE of forewarn tables', analysed, 'pass');
        passes.push(['steady pass', steady], ['steady pass after ANALYZE', analysed]);
        notes.push(
          `${n}: the first pass read ${fmt(first.rows)} idle users in ${fmt(first.pages)} pages and recorded ${fmt(first.changes)} cause changes, ${(first.ms / TARGET_PASS_MS).toFixed(1)}x the 5 s target; the steady passes read ${fmt(steady.rows)} and ${fmt(analysed.rows)} and recorded ${fmt(steady.changes + analysed.changes)}`,
        );
      }
      if (detailed) {
        for (const [label, m] of passes)
          notes.push(
            `${n}, ${label}, time in statements (ms/calls; the page reads run ahead on a connection of their own, overlapping the rest): ${m
              .statements!.map((s) => `${s.name} ${fmt(s.ms)}/${fmt(s.calls)}`)
              .join(', ')}`,
          );
      }
    } finally {
      await db.drop();
    }
  }
  notes.push(
    `target: a pass over 1,000,000 users (250,000 check-ups) in at most ${TARGET_PASS_MS / 1000} s: at least 200,000 users in the table per second, or 50,000 check-ups recorded per second`,
    `pages of ${fmt(pageSize)} users (BENCH_INACTIVITY_PAGE), stepDays [${shipped.stepDays.join(', ')}], maxIdleDays ${shipped.maxIdleDays}, remindersPerMinute ${fmt(REMINDERS_PER_MINUTE)} (pacing out of the way)`,
    `autovacuum is ${autovacuum} on this server; the first pass writes forewarn's rows in its own transaction, so it plans with the statistics of before it whatever autovacuum does`,
    'no dry run figure: a dry run records in its transaction as a live pass does and rolls it back; "decide only" is the pass without its writes',
    `each node-pg measurement in a fresh process (its RSS includes node and tsx); a live pass keeps ${CHANGES_KEPT_IN_FULL.toLocaleString('en-US')} of the changes it records in full and of the rest their event ids (for the fan-out), so the first pass's heap grows by an id per check-up`,
  );
  return { name: 'inactivity: idle-user pass', figures, notes };
}

/** What autovacuum would do after the first pass: fresh statistics for forewarn's tables. */
async function analyzeForewarn(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('ANALYZE forewarn.subject_state, forewarn.incidents, forewarn.incident_events');
  } finally {
    await client.end();
  }
}

/**
 * The users, set-based: a quarter idle between 3 and 365 days (every fourth; a fifth of those
 * never signed in), 2% disabled or deleted (idle too, but not active), 1% never signed in and
 * signed up 400 to 1,400 days ago, the rest active within the last 3 days. The scan's index is
 * built after the rows are in (createPlatformSchema again), then the table is vacuumed and analysed
 * (so that no reader pays for setting hint bits). Returns the server's autovacuum setting.
 */
async function loadUsers(url: string, users: number): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
    await client.query(`DROP INDEX ${SCHEMA}.users_idle_since_idx`);
    await client.query('SELECT setseed(0.2026)');
    // Idle users sit between 3 days and 1 hour and 364 days, clear of the steps' edges for the
    // ticks (10 minutes ago) and of maxIdleDays.
    await client.query(
      `INSERT INTO ${SCHEMA}.users (id, email, locale, region, timezone, status, last_active_at, created_at)
       SELECT 'u' || lpad(i::text, 8, '0'), 'user' || i || '@example.com',
              CASE WHEN z < 0.8 THEN 'zh-CN' WHEN z < 0.9 THEN 'en-US' ELSE 'en-GB' END,
              CASE WHEN z < 0.8 THEN 'CN' WHEN z < 0.9 THEN 'US' ELSE 'GB' END,
              CASE WHEN z < 0.8 THEN 'Asia/Shanghai' WHEN z < 0.9 THEN 'America/Los_Angeles' ELSE 'Europe/London' END,
              CASE WHEN i % 100 = 1 THEN 'disabled' WHEN i % 100 = 3 THEN 'deleted' ELSE 'active' END,
              CASE WHEN i % 20 = 0 OR i % 100 = 2 THEN NULL ELSE seen END,
              CASE WHEN i % 100 = 2 THEN now() - interval '400 days' - r * interval '1000 days'
                   WHEN i % 20 = 0 THEN seen
                   ELSE seen - r * interval '400 days' END
         FROM (SELECT i, random() AS r, random() AS z,
                      now() - CASE WHEN i % 4 = 0 OR i % 100 IN (1, 3)
                                   THEN interval '3 days 1 hour' + random() * interval '361 days'
                                   ELSE random() * interval '2 days 22 hours' END AS seen
                 FROM generate_series(1, $1) AS i) AS g`,
      [users],
    );
    await client.query(`SET maintenance_work_mem = '512MB'`);
    await createPlatformSchema(client, SCHEMA);
    await client.query(`VACUUM (ANALYZE) ${SCHEMA}.users`);
    const { rows } = await client.query<{ autovacuum: string }>('SHOW autovacuum');
    return rows[0]!.autovacuum;
  } finally {
    await client.end();
  }
}

/** The pass's WHERE and ORDER BY (readIdleUserPage's) without LIMIT, through `psql`, to /dev/null. */
async function psqlRead(
  url: string,
  tickAt: number,
  settings: { stepDays: readonly number[]; maxIdleDays: number },
): Promise<{ ms: number; rows: number; plan: string }> {
  const until = new Date(tickAt - settings.stepDays[0]! * DAY).toISOString();
  const after = new Date(tickAt - settings.maxIdleDays * DAY).toISOString();
  const select = `SELECT id, (extract(epoch FROM coalesce(last_active_at, created_at)) * 1000)::float8 AS since,
            coalesce(last_active_at, created_at)::text AS cursor, last_active_at IS NULL AS never, timezone
       FROM ${SCHEMA}.users
      WHERE status = 'active'
        AND coalesce(last_active_at, created_at) <= '${until}'
        AND coalesce(last_active_at, created_at) > '${after}'
      ORDER BY coalesce(last_active_at, created_at) DESC, id DESC`;
  const psql = (sql: string, out?: string) => runPsql(url, sql, out);
  const plan = (await psql(`EXPLAIN (COSTS OFF) ${select}`))
    .split('\n')
    .filter((line) => /Scan|Sort/.test(line))
    .map((line) => line.trim().replace(/^->\s*/, ''))
    .join(' <- ');
  const { ms } = await timed(() => psql(select, '/dev/null'));
  const rows = Number((await psql(`SELECT count(*) FROM (${select}) AS s`)).trim());
  return { ms, rows, plan };
}

/** Runs SQL through `psql` (output to `out` if given), resolving with what it printed. */
function runPsql(url: string, sql: string, out?: string): Promise<string> {
  return new Promise<string>((resolve, reject) =>
    execFile(
      'psql',
      ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql, ...(out ? ['-o', out] : [])],
      { maxBuffer: 1024 * 1024 },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
}

/**
 * What recording `count` check-ups costs PostgreSQL alone on this schema: the same rows the first
 * pass writes (a cause, its outbox event, a state each, with every index and constraint), made
 * by INSERT ... SELECT from generate_series in one transaction through `psql`, rolled back.
 */
async function psqlWriteFloor(url: string, count: number): Promise<number> {
  const sql = `BEGIN;
    WITH cause AS (
      INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence)
      SELECT 'bench-floor', g::text, jsonb_build_object('userId', g::text), 'inactive', now(),
             jsonb_build_object('since', 0, 'neverSignedIn', false, 'idleDays', 10, 'stepDays', 3, 'previousStepDays', null)
        FROM generate_series(1, ${count}) AS g
      RETURNING id, subject_key, open_evidence)
    INSERT INTO forewarn.incident_events (incident_id, type, seq, occurred_at, payload)
    SELECT id, 'opened', 0, now(), open_evidence || jsonb_build_object('userId', subject_key, 'incidentId', id::text)
      FROM cause;
    INSERT INTO forewarn.subject_state (detector, subject_key, state, position)
    SELECT 'bench-floor', g::text, jsonb_build_object('since', 0, 'stepDays', 3), 0
      FROM generate_series(1, ${count}) AS g;
    ROLLBACK;`;
  const { ms } = await timed(() => runPsql(url, sql));
  return ms;
}

type ChildRequest = {
  type: 'raw' | 'decide' | 'tick';
  url: string;
  tickAt: number;
  pageSize: number;
  limitMs: number;
  breakdown?: boolean;
  /** Computes the pass in a transaction that is rolled back (what decide plus record costs without the writes). */
  dryRun?: boolean;
};

function inChild(request: ChildRequest): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = fork(SCRIPT, ['child'], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let reply: { ok: true; value: Measured } | { ok: false; error: string } | undefined;
    // Past the limit the child reports how far it got and exits (its transaction is rolled back);
    // one that does not answer is killed.
    let kill: NodeJS.Timeout | undefined;
    const limit = setTimeout(() => {
      child.send('stop');
      kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    }, request.limitMs);
    child.on('message', (message: typeof reply) => (reply = message));
    child.on('exit', (code) => {
      clearTimeout(limit);
      clearTimeout(kill);
      if (reply?.ok) resolve(reply.value);
      else reject(new Error(`bench child (${request.type}): ${reply ? reply.error : `exited with ${code}`}`));
    });
    child.send(request);
  });
}

async function childMain(request: ChildRequest): Promise<Measured> {
  const pool = new pg.Pool({ connectionString: request.url, max: 4 });
  const statements = request.breakdown ? timeStatements(pool) : undefined;
  try {
    const shipped = await loadConfigFile(CONFIG_FILE);
    const settings = inactivityConfigSchema.parse({
      ...shipped.detectors.inactivity,
      remindersPerMinute: REMINDERS_PER_MINUTE,
      pageSize: request.pageSize,
    });
    const config: Config = { ...shipped, detectors: { ...shipped.detectors, inactivity: settings } };
    const now = request.tickAt;
    const page = {
      schema: SCHEMA,
      idleUntilMs: now - settings.stepDays[0]! * DAY,
      idleAfterMs: now - settings.maxIdleDays * DAY,
      limit: settings.pageSize,
    };

    if (request.type === 'raw') {
      const memory = watchMemory();
      const { value, ms } = await timed(async () => {
        let after: { cursor: string; id: string } | null = null;
        let rows = 0;
        let pages = 0;
        for (;;) {
          const result: pg.QueryResult<{ id: string; cursor: string }> = await pool.query(
            `SELECT id, (extract(epoch FROM coalesce(last_active_at, created_at)) * 1000)::float8 AS since,
                    coalesce(last_active_at, created_at)::text AS cursor,
                    last_active_at IS NULL AS never, timezone
               FROM ${SCHEMA}.users
              WHERE status = 'active'
                AND coalesce(last_active_at, created_at) <= $1
                AND coalesce(last_active_at, created_at) > $2
                AND ($3::timestamptz IS NULL OR (coalesce(last_active_at, created_at), id) < ($3, $4::text))
              ORDER BY coalesce(last_active_at, created_at) DESC, id DESC
              LIMIT $5`,
            [new Date(page.idleUntilMs), new Date(page.idleAfterMs), after?.cursor, after?.id, page.limit],
          );
          rows += result.rows.length;
          pages++;
          if (result.rows.length < page.limit) return { rows, pages };
          after = result.rows.at(-1)!;
        }
      });
      return { ms, changes: 0, ...value, ...memory.stop() };
    }

    if (request.type === 'decide') {
      // What the pass does before it writes: each page, its remembered periods, the pure detector.
      const memory = watchMemory();
      const { value, ms } = await timed(async () => {
        let after: { cursor: string; userId: string } | null = null;
        let rows = 0;
        let pages = 0;
        let changes = 0;
        let below: number | null = null;
        for (;;) {
          const read = await readIdleUserPage(pool, { ...page, after });
          const users = read.filter((r) => r.timezone !== null && isTimeZone(r.timezone));
          // As the pass reads them: the page's range of periods, then by key those elsewhere.
          const from = Math.min(...users.map((u) => u.idleSince));
          const ranged = await readSubjectStatesBetween<InactivityState>(pool, inactivity.id, from, below);
          below = from;
          const states = new Map(ranged.map((r) => [r.subjectKey, r.state]));
          const elsewhere = users.map((u) => u.userId).filter((id) => !states.has(id));
          for (const [id, state] of await readSubjectStates<InactivityState>(pool, inactivity.id, elsewhere))
            states.set(id, state);
          changes += detectInactivity(users, states, settings, now).changes.length;
          rows += read.length;
          pages++;
          if (read.length < page.limit) return { rows, pages, changes };
          after = { cursor: read.at(-1)!.cursor, userId: read.at(-1)!.userId };
        }
      });
      return { ms, ...value, ...memory.stop() };
    }

    const logger = createLogger({ level: 'warn' });
    const ctx = {
      db: pool,
      platformDb: pool,
      platformSchema: SCHEMA,
      config: () => config,
      logger,
      workerId: 'bench',
      invalidRows: new InvalidRowReporter(logger),
    };
    const memory = watchMemory();
    const { value: result, ms } = await timed(() =>
      inactivity.run(ctx, request.tickAt, { dryRun: request.dryRun ?? false }),
    );
    if (result.outcome !== 'evaluated') throw new Error(`tick ${result.outcome}: ${result.detail ?? ''}`);
    const findings = result.findings!;
    if (findings.limited) throw new Error('the pass was paced: raise REMINDERS_PER_MINUTE');
    return {
      ms,
      rows: findings.subjects,
      pages: findings.pages,
      changes: result.changeCount,
      ...memory.stop(),
      ...(statements ? { statements: statements() } : {}),
    };
  } finally {
    await pool.end();
  }
}

/** Statements the pass may run, named for the breakdown: the first whose pattern matches. */
const STATEMENTS: Array<[name: string, pattern: RegExp]> = [
  ['readIdleUserPage', /FROM\s+\S+\.users\s+WHERE status = 'active'/],
  ['readActiveIdleSince', /FROM\s+\S+\.users\s+WHERE id = ANY/],
  ['readSubjectStates', /FROM forewarn\.subject_state WHERE detector = \$1 AND subject_key = k\.key/],
  ['readSubjectStatesBetween', /FROM forewarn\.subject_state\s+WHERE detector = \$1 AND position >= \$2/],
  ['readPositionedStatePage', /FROM forewarn\.subject_state\s+WHERE detector = \$1 AND position IS NOT NULL/],
  ['readUnpositionedStatePage', /FROM forewarn\.subject_state\s+WHERE detector = \$1 AND position IS NULL/],
  ['saveSubjectStates upsert', /INSERT INTO forewarn\.subject_state/],
  ['saveSubjectStates delete', /DELETE FROM forewarn\.subject_state/],
  ['incidents resolve', /UPDATE forewarn\.incidents/],
  ['incidents insert', /INSERT INTO forewarn\.incidents /],
  ['incidents lookup', /FROM forewarn\.incidents i\s+JOIN/],
  ['incident_events insert', /INSERT INTO forewarn\.incident_events/],
  ['savepoints', /SAVEPOINT/],
  ['COMMIT', /^COMMIT/],
];

/**
 * Times every statement the pool's clients run, by name (STATEMENTS; the rest as "other"), from
 * the call to its result: returns a function that reads the totals so far.
 */
function timeStatements(pool: pg.Pool): () => Array<{ name: string; calls: number; ms: number }> {
  const totals = new Map<string, { calls: number; ms: number }>();
  const add = (text: string, ms: number) => {
    const name = STATEMENTS.find(([, pattern]) => pattern.test(text))?.[0] ?? 'other';
    const total = totals.get(name) ?? { calls: 0, ms: 0 };
    totals.set(name, { calls: total.calls + 1, ms: total.ms + ms });
  };
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      const text = typeof first === 'string' ? first : String((first as { text?: string }).text);
      const started = performance.now();
      const last = args.at(-1);
      if (typeof last === 'function') {
        args[args.length - 1] = (...results: unknown[]) => {
          add(text, performance.now() - started);
          return (last as (...results: unknown[]) => unknown)(...results);
        };
        return query(...args);
      }
      const pending = query(...args) as Promise<unknown>;
      return pending.finally(() => add(text, performance.now() - started));
    };
  });
  return () =>
    [...totals.entries()]
      .map(([name, t]) => ({ name, calls: t.calls, ms: t.ms }))
      .sort((a, b) => b.ms - a.ms);
}

if (
  process.argv[1] &&
  pathToFileURL(process.argv[1]).href === import.meta.url &&
  process.argv[2] === 'child'
) {
  process.once('message', (request: ChildRequest) => {
    childMain(request).then(
      (value) => process.send!({ ok: true, value }, () => process.exit(0)),
      (error: unknown) =>
        process.send!({ ok: false, error: error instanceof Error ? error.stack : String(error) }, () =>
          process.exit(1),
        ),
    );
  });
}
