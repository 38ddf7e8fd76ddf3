// Benchmark: one restock wave to a large audience through the restock-alert kind, the way the
// fan-out runs a kind (audience pages of notifications.batchSize with `taken`, a draft per
// recipient and channel, insertNotifications per page), with the platform's tables and
// forewarn's in two databases; next to a baseline, a bare keyset SELECT of the same
// subscriptions page by page. Memory stays flat when the audience grows: compare the sizes.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { escapeIdentifier } from 'pg';
import pg from 'pg';
import { loadConfigFile } from '../lib/config/load.ts';
import type { Config } from '../lib/config/schema.ts';
import { inTransaction } from '../lib/db/pool.ts';
import { migrate } from '../lib/db/migrate.ts';
import { recordCauseChange } from '../lib/incidents/store.ts';
import { createLogger } from '../lib/logger.ts';
import { restockAlert } from '../lib/messages/inventory-restock.ts';
import type { CauseEvent, MessageContext } from '../lib/messages/kind.ts';
import {
  insertNotifications,
  type DeliveryChannel,
  type NotificationDraft,
} from '../lib/notifications/store.ts';
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
import { linkKeyring } from '../lib/links.ts';

const SCHEMA = 'platform';
const PRODUCT = 'gc-steam-100';
const CONFIG = new URL('../config/forewarn.yaml', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

export async function benchRestock(): Promise<BenchResult> {
  const sizes = positiveIntsFromEnv('BENCH_RESTOCK_SIZES', [10_000, 50_000]);
  /** Subscriptions to other products beside the restocked one's, per subscriber. */
  const noise = positiveIntFromEnv('BENCH_RESTOCK_NOISE', 4);
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const size of sizes) {
    const run = await waveInFreshProcess(size, noise);
    const n = size.toLocaleString('en-US');
    figures.push(
      figure(`baseline: bare keyset SELECT of ${n} subscriptions`, run.baseline.ms / 1000, 's'),
      figure(`baseline, ${n}: peak RSS`, run.baseline.peakRssMb, 'MiB'),
      figure(`baseline, ${n}: peak live heap`, run.baseline.peakLiveHeapMb, 'MiB'),
      figure(`wave to ${n} subscribers: all recorded in`, run.wave.ms / 1000, 's'),
      figure(`wave to ${n}: rate`, size / (run.wave.ms / 1000), 'recipients/s'),
      figure(`wave to ${n}: of which audience pages`, run.split.audienceMs / 1000, 's'),
      figure(`wave to ${n}: of which data (2 signed links each)`, run.split.dataMs / 1000, 's'),
      figure(`wave to ${n}: of which insertNotifications`, run.split.insertMs / 1000, 's'),
      figure(`wave to ${n}: notifications recorded`, run.wave.recorded, 'rows'),
      figure(`wave to ${n}: peak RSS`, run.wave.peakRssMb, 'MiB'),
      figure(`wave to ${n}: peak live heap`, run.wave.peakLiveHeapMb, 'MiB'),
      figure(`wave to ${n}: live heap after the run`, run.wave.liveHeapAfterMb, 'MiB'),
    );
    notes.push(
      `${n}: ${run.pages} audience pages of notifications.batchSize; the baseline reads ${run.baselineRows.toLocaleString('en-US')} rows`,
    );
  }
  return {
    name: 'restock: one wave to many subscribers (restock-alert kind)',
    figures,
    notes: [
      ...notes,
      `each subscriber: a platform subscription, every tenth also a forewarn request (earlier or later), ${noise} subscriptions to other products; email and in-app recorded as pending rows`,
      'platform and forewarn in two databases on one server; restock_subscriptions indexed as docs/platform-contract.md recommends',
      "each size runs in a fresh process (--expose-gc): baseline first, then the wave; RSS never shrinks, so the wave's peak RSS includes the baseline's",
    ],
  };
}

/** benchWave in a process of its own (restock-process.ts), so that RSS is the run's own. */
async function waveInFreshProcess(size: number, noise: number): Promise<WaveRun> {
  const script = fileURLToPath(new URL('./restock-process.ts', import.meta.url));
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', script, String(size), String(noise)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as WaveRun;
}

export interface WaveRun {
  baseline: { ms: number; peakRssMb: number; peakLiveHeapMb: number };
  baselineRows: number;
  wave: { ms: number; recorded: number; peakRssMb: number; peakLiveHeapMb: number; liveHeapAfterMb: number };
  split: Split;
  pages: number;
}

interface Split {
  audienceMs: number;
  dataMs: number;
  insertMs: number;
}

export async function benchWave(size: number, noise: number): Promise<WaveRun> {
  const fwDb = await benchDatabase('forewarn_bench_restock');
  const platformDb = await benchDatabase('forewarn_bench_restock_platform');
  const logger = createLogger({ level: 'error' });
  await migrate(fwDb.url, logger);
  const fw = new pg.Pool({ connectionString: fwDb.url, max: 4 });
  const platform = new pg.Pool({ connectionString: platformDb.url, max: 4 });
  try {
    await seed(platform, fw, size, noise);
    const shipped = await loadConfigFile(CONFIG);
    const config: Config = shipped;
    const ctx: MessageContext = {
      db: fw,
      platformDb: platform,
      platformSchema: SCHEMA,
      config: () => config,
      logger,
      publicUrl: 'https://notify.example.com',
      linkKeys: linkKeyring('bench-link-secret-0123456789abcdef'),
    };
    const baseline = await bareKeysetSelect(platform, config.notifications.batchSize);
    const event = await openRestock(fw, size);
    const memory = watchMemory();
    const { value, ms } = await timed(() => fanOut(ctx, event, config.notifications.batchSize));
    const peaks = memory.stop();
    if (value.recipients !== size)
      throw new Error(`restock bench: expected ${size} recipients, got ${value.recipients}`);
    return {
      baseline: { ms: baseline.ms, peakRssMb: baseline.peakRssMb, peakLiveHeapMb: baseline.peakLiveHeapMb },
      baselineRows: baseline.rows,
      wave: { ms, recorded: value.recorded, ...peaks },
      split: value.split,
      pages: value.pages,
    };
  } finally {
    await fw.end();
    await platform.end();
    await fwDb.drop();
    await platformDb.drop();
  }
}

async function seed(platform: pg.Pool, fw: pg.Pool, size: number, noise: number): Promise<void> {
  const client = await platform.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
  } finally {
    client.release();
  }
  const s = escapeIdentifier(SCHEMA);
  await platform.query(
    `INSERT INTO ${s}.users (id, email, locale, region, timezone, status, created_at)
     SELECT 'u' || lpad(i::text, 7, '0'), 'u' || i || '@example.com', CASE WHEN i % 3 = 0 THEN 'en' ELSE 'zh-CN' END,
            'CN-GD', 'Asia/Shanghai', 'active', now()
       FROM generate_series(1, $1) AS i`,
    [size],
  );
  // Sign-up order is not id order; other products' subscriptions make the table larger than one product's.
  await platform.query(
    `INSERT INTO ${s}.restock_subscriptions (user_id, product_id, created_at)
     SELECT 'u' || lpad(i::text, 7, '0'), $2, now() - interval '30 days' + ((i * 7919) % $1) * interval '1 second'
       FROM generate_series(1, $1) AS i`,
    [size, PRODUCT],
  );
  await platform.query(
    `INSERT INTO ${s}.restock_subscriptions (user_id, product_id, created_at)
     SELECT 'u' || lpad(i::text, 7, '0'), 'other-' || k, now() - interval '30 days' + i * interval '1 second'
       FROM generate_series(1, $1) AS i, generate_series(1, $2) AS k`,
    [size, noise],
  );
  await platform.query(
    `INSERT INTO ${s}.products (id, name, stock, updated_at) VALUES ($1, 'Steam 充值卡 100 元', $2, now())`,
    [PRODUCT, size],
  );
  await platform.query(`ANALYZE ${s}.users; ANALYZE ${s}.restock_subscriptions`);
  await fw.query(
    `INSERT INTO forewarn.restock_requests (user_id, product_id, requested_at)
     SELECT 'u' || lpad(i::text, 7, '0'), $2,
            now() - interval '30 days' + ((i * 7919) % $1) * interval '1 second' + CASE WHEN i % 20 = 0 THEN interval '-1 hour' ELSE interval '1 hour' END
       FROM generate_series(10, $1, 10) AS i`,
    [size, PRODUCT],
  );
  await fw.query('ANALYZE forewarn.restock_requests');
}

/** The baseline: the product's subscriptions, page by page, as bare as a keyset read gets. */
async function bareKeysetSelect(
  platform: pg.Pool,
  limit: number,
): Promise<{ ms: number; rows: number; peakRssMb: number; peakLiveHeapMb: number }> {
  const s = escapeIdentifier(SCHEMA);
  const memory = watchMemory();
  const { value, ms } = await timed(async () => {
    let rows = 0;
    let after: { at: string; userId: string } | null = null;
    for (;;) {
      const page: pg.QueryResult<{ user_id: string; at: string }> = await platform.query(
        `SELECT user_id, created_at::text AS at FROM ${s}.restock_subscriptions
          WHERE product_id = $1 AND ($2::timestamptz IS NULL OR (created_at, user_id COLLATE "C") > ($2::timestamptz, $3::text))
          ORDER BY created_at, user_id COLLATE "C" LIMIT $4`,
        [PRODUCT, after?.at ?? null, after?.userId ?? null, limit],
      );
      rows += page.rows.length;
      if (page.rows.length < limit) return rows;
      const last = page.rows[page.rows.length - 1]!;
      after = { at: last.at, userId: last.user_id };
    }
  });
  const { peakRssMb, peakLiveHeapMb } = memory.stop();
  return { ms, rows: value, peakRssMb, peakLiveHeapMb };
}

async function openRestock(fw: pg.Pool, size: number): Promise<CauseEvent> {
  const at = Date.now();
  const change = {
    detector: 'inventory',
    subjectKey: PRODUCT,
    subject: { productId: PRODUCT },
    kind: 'restock',
    type: 'opened',
    at,
    evidence: { stock: size, pendingUnits: 0 },
    productId: PRODUCT,
    productName: 'Steam 充值卡 100 元',
    stock: size,
    pendingUnits: 0,
    available: size,
    capacity: size,
    wave: 1,
    restockedAt: at,
  };
  const recorded = await inTransaction(fw, (client) => recordCauseChange(client, change));
  return {
    eventId: recorded.eventId,
    causeId: recorded.incidentId,
    type: 'opened',
    seq: 0,
    payload: { ...change, incidentId: recorded.incidentId },
  };
}

/** The generic fan-out's loop over one kind, kept to what it does per page. */
async function fanOut(
  ctx: MessageContext,
  event: CauseEvent,
  limit: number,
): Promise<{ recipients: number; recorded: number; pages: number; split: Split }> {
  const kind = restockAlert;
  const prepared = await kind.prepare!(ctx, event);
  const channels = kind.channels(ctx.config()) as readonly DeliveryChannel[];
  let after: string | null = null;
  let taken = 0;
  let recorded = 0;
  let pages = 0;
  const split: Split = { audienceMs: 0, dataMs: 0, insertMs: 0 };
  do {
    let started = performance.now();
    const page = await kind.audience(ctx, event, { after, limit, taken }, prepared);
    split.audienceMs += performance.now() - started;
    started = performance.now();
    const drafts: NotificationDraft[] = [];
    for (const r of page.recipients) {
      const data = kind.data(ctx, event, r, prepared);
      for (const channel of channels) {
        if (channel === 'email' && !r.address) continue;
        drafts.push({
          dedupeKey: `cause:${event.causeId}:${kind.id}:${channel}:${r.userId}`,
          cause: `cause:${event.causeId}`,
          incidentId: event.causeId,
          kind: kind.id,
          channel,
          audience: 'user',
          userId: r.userId,
          address: channel === 'email' ? r.address : null,
          locale: r.locale,
          data,
          category: kind.category,
        });
      }
    }
    split.dataMs += performance.now() - started;
    started = performance.now();
    const ids = await inTransaction(ctx.db, async (client) => {
      if (kind.stillTrue && !(await kind.stillTrue(client, event))) return null;
      return insertNotifications(client, drafts);
    });
    split.insertMs += performance.now() - started;
    if (ids === null) break;
    recorded += ids.length;
    taken += page.recipients.length;
    pages++;
    after = page.cursor;
  } while (after !== null);
  return { recipients: taken, recorded, pages, split };
}
