// GET /readyz: whether this replica can do its work: PostgreSQL (forewarn's and the platform's)
// and Redis answer, forewarn's schema is at this release's migration, and a config is loaded.
// 503 names the failing parts; each check is bounded, so a hung service answers "no" in time.
// The platform data's high-water mark and each detector's last tick are shown beside, for ops:
// they never make a replica unready (a quiet platform is not a broken forewarn).
import type { Redis } from 'ioredis';
import { bounded } from '../../bounded.ts';
import { configHash } from '../../config/hash.ts';
import { readMigrations } from '../../db/migrate.ts';
import { withQueryTimeout, type Queryable } from '../../db/pool.ts';
import { tickBounds } from '../../watchdog/bounds.ts';
import { readDataHighWater, readLastTicks } from '../../watchdog/read.ts';
import type { HttpDeps, HttpRoutes } from '../deps.ts';

/** A service that does not answer within this long counts as down. */
const CHECK_TIMEOUT_MS = 2_000;

type Check = { ok: true; [detail: string]: unknown } | { ok: false; error: string };

export const readyzRoutes: HttpRoutes = {
  parts: ['http:/readyz'],
  register(server, deps) {
    const latest = readMigrations().then((all) => Math.max(0, ...all.map((m) => m.version)));
    // Its rejection is the schema check's to report, at the first request.
    latest.catch(() => undefined);
    // Queries give up with the check, so that a hung server holds none of the pools' clients.
    const db = withQueryTimeout(deps.db, CHECK_TIMEOUT_MS);
    const platformDb = withQueryTimeout(deps.platformDb, CHECK_TIMEOUT_MS);
    // Probes that arrive while one runs share it: a hung service never piles up checks.
    let probing: Promise<Readiness> | undefined;
    const probe = () => {
      probing ??= readiness(deps, db, platformDb, latest).finally(() => {
        probing = undefined;
      });
      return probing;
    };
    server.get('/readyz', async (_request, reply) => {
      const { code, body } = await probe();
      return reply.code(code).send(body);
    });
  },
};

interface Readiness {
  code: 200 | 503;
  body: Record<string, unknown>;
}

async function readiness(
  deps: HttpDeps,
  db: Queryable,
  platformDb: Queryable,
  latest: Promise<number>,
): Promise<Readiness> {
  const [postgres, platform, redis, ticks] = await Promise.all([
    check(() => checkSchema(db, latest)),
    check(() => checkPlatform(platformDb, deps.platformSchema)),
    check(() => checkRedis(deps.redis)),
    deps.config ? check(() => lastTicks(deps, db)) : Promise.resolve(undefined),
  ]);
  const config = deps.config
    ? ({ ok: true, hash: configHash(deps.config()) } as const)
    : ({ ok: false, error: 'no config loaded' } as const);
  const checks = { postgres, platform, redis, config };
  const failing = Object.entries(checks)
    .filter(([, c]) => !c.ok)
    .map(([name]) => name);
  return {
    code: failing.length === 0 ? 200 : 503,
    body: {
      status: failing.length === 0 ? 'ready' : 'unready',
      ...(failing.length > 0 ? { failing } : {}),
      checks,
      ...(ticks?.ok ? { ticks } : {}),
    },
  };
}

async function checkSchema(db: Queryable, latest: Promise<number>): Promise<Check> {
  const { rows } = await db.query<{ version: number | null }>(
    `SELECT CASE WHEN to_regclass('forewarn.schema_migrations') IS NULL THEN NULL
                 ELSE (SELECT max(version) FROM forewarn.schema_migrations) END AS version`,
  );
  const current = rows[0]?.version ?? null;
  const needed = await latest;
  if (current === null || current < needed)
    return {
      ok: false,
      error: `forewarn's schema is at version ${current ?? 'none'}, this release needs ${needed}: run \`forewarn migrate\``,
    };
  return { ok: true, schemaVersion: current };
}

async function checkPlatform(platformDb: Queryable, schema: string): Promise<Check> {
  const mark = await readDataHighWater(platformDb, schema);
  return {
    ok: true,
    // The platform data's high-water mark, and how far it lies behind the platform's clock.
    newestPaymentAttemptAt: mark.newestAt === null ? null : new Date(mark.newestAt).toISOString(),
    lagSeconds:
      mark.newestAt === null ? null : Math.max(0, Math.round((mark.platformNow - mark.newestAt) / 1000)),
  };
}

async function checkRedis(redis: Redis | undefined): Promise<Check> {
  if (redis === undefined) return { ok: false, error: 'no Redis connection given to the HTTP role' };
  const answer = await redis.ping();
  return answer === 'PONG' ? { ok: true } : { ok: false, error: `PING answered ${answer}` };
}

/** Each scheduled detector's last tick, with the watchdog's bound for it (config watchdog.ticks). */
async function lastTicks(deps: HttpDeps, db: Queryable): Promise<Check> {
  const bounds = tickBounds(deps.config!());
  const now = deps.now();
  const ticks = await readLastTicks(
    db,
    bounds.map((b) => b.detector),
  );
  return {
    ok: true,
    detectors: Object.fromEntries(
      ticks.map((t, i) => {
        const boundSeconds = bounds[i]!.boundMs / 1000;
        if (t.finishedAt === null) return [t.detector, { lastTickAt: null, boundSeconds }];
        const ageSeconds = Math.max(0, Math.round((now - t.finishedAt) / 1000));
        return [
          t.detector,
          {
            lastTickAt: new Date(t.finishedAt).toISOString(),
            ageSeconds,
            outcome: t.outcome,
            boundSeconds,
            stopped: ageSeconds > boundSeconds,
          },
        ];
      }),
    ),
  };
}

/** The check's answer, or "down" with why when it throws or does not answer in time. */
function check(run: () => Promise<Check>): Promise<Check> {
  return bounded(run(), CHECK_TIMEOUT_MS).catch((error: unknown): Check => ({
    ok: false,
    error: (error as Error).message || String(error),
  }));
}
