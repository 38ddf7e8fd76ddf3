// Loads the simulated platform into PostgreSQL: channels and users by batched inserts, payment
// attempts by streaming COPY, fast enough to load a simulated day in seconds.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { escapeIdentifier } from 'pg';
import type { ClientBase } from 'pg';
import copyStreams from 'pg-copy-streams';
import type { Platform, SimUser } from './platform.ts';
import type { SimAttempt } from './traffic.ts';

const USERS_PER_INSERT = 5_000;
// Big enough that per-chunk overhead vanishes, small enough to keep memory flat (~100 KB).
const ROWS_PER_CHUNK = 1_000;

export interface SeedCounts {
  channels: number;
  users: number;
}

/** Inserts or updates the platform's payment channels and `users`; safe to run again. */
export async function seedPlatform(
  client: ClientBase,
  schema: string,
  platform: Platform,
  users: readonly SimUser[],
): Promise<SeedCounts> {
  const s = escapeIdentifier(schema);
  const channels = platform.channels;
  if (channels.length > 0) {
    const values = channels.map(
      (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`,
    );
    await client.query(
      `INSERT INTO ${s}.payment_channels (id, display_name, regions, enabled, priority)
       VALUES ${values.join(', ')}
       ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, regions = EXCLUDED.regions,
         enabled = EXCLUDED.enabled, priority = EXCLUDED.priority`,
      channels.flatMap((c) => [c.id, c.displayName, [...c.regions], c.enabled, c.priority]),
    );
  }

  // Column arrays through unnest: one round trip and one parse per batch, whatever its size.
  for (let start = 0; start < users.length; start += USERS_PER_INSERT) {
    const batch = users.slice(start, start + USERS_PER_INSERT);
    await client.query(
      `INSERT INTO ${s}.users (id, email, locale, region, timezone, status, last_active_at, created_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $7::timestamptz[], $8::timestamptz[])
       ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, locale = EXCLUDED.locale,
         region = EXCLUDED.region, timezone = EXCLUDED.timezone, status = EXCLUDED.status,
         last_active_at = EXCLUDED.last_active_at, created_at = EXCLUDED.created_at`,
      [
        batch.map((u) => u.id),
        batch.map((u) => u.email),
        batch.map((u) => u.locale),
        batch.map((u) => u.region),
        batch.map((u) => u.timezone),
        batch.map((u) => u.status),
        batch.map((u) => (u.lastActiveAt === null ? null : new Date(u.lastActiveAt).toISOString())),
        batch.map((u) => new Date(u.createdAt).toISOString()),
      ],
    );
  }
  return { channels: channels.length, users: users.length };
}

/**
 * Streams `attempts` into payment_attempts with COPY (text format) and returns how many rows
 * PostgreSQL stored. Attempts are consumed lazily, so a generator never materializes in memory.
 * On error the COPY is aborted and nothing from this call is stored.
 *
 * Rows are stored as given, final ones with their finished_at: this loads settled history. Live
 * traffic, written as pending and updated in place, is sim/live.ts's job.
 */
export async function copyAttempts(
  client: ClientBase,
  schema: string,
  attempts: Iterable<SimAttempt>,
): Promise<number> {
  const copy = client.query(
    copyStreams.from(
      `COPY ${escapeIdentifier(schema)}.payment_attempts
         (id, user_id, channel_id, region, status, error_code, latency_ms, created_at, finished_at) FROM STDIN`,
    ),
  );
  await pipeline(Readable.from(chunksOf(attempts)), copy);
  return copy.rowCount;
}

function* chunksOf(attempts: Iterable<SimAttempt>): Generator<string, void, undefined> {
  // One formatter per column: each column's times ascend on their own, the two together do not.
  const created = timestampFormatter();
  const finished = timestampFormatter();
  let chunk = '';
  let rows = 0;
  for (const a of attempts) {
    chunk += copyRow(a, created, finished);
    if (++rows === ROWS_PER_CHUNK) {
      yield chunk;
      chunk = '';
      rows = 0;
    }
  }
  if (rows > 0) yield chunk;
}

const NULL = '\\N';

/** One line of COPY text format, in copyAttempts' column order (finished_at last). */
export function copyRow(
  a: SimAttempt,
  createdTimestamp: (ms: number) => string = isoTimestamp,
  finishedTimestamp: (ms: number) => string = createdTimestamp,
): string {
  return (
    `${a.id}\t${copyText(a.userId)}\t${copyText(a.channelId)}\t${copyText(a.region)}\t${copyText(a.status)}\t` +
    `${a.errorCode === null ? NULL : copyText(a.errorCode)}\t${a.latencyMs === null ? NULL : a.latencyMs}\t` +
    `${createdTimestamp(a.createdAt)}\t${a.finishedAt === null ? NULL : finishedTimestamp(a.finishedAt)}\n`
  );
}

function isoTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * ISO timestamps for mostly ascending times: a simulated day has ~16 attempts per second, so the
 * date-and-seconds prefix is reused and formatting costs a fraction of a Date per row.
 */
function timestampFormatter(): (ms: number) => string {
  let second = NaN;
  let prefix = '';
  return (ms) => {
    const s = Math.floor(ms / 1000);
    const millis = ms - s * 1000;
    if (!Number.isInteger(millis)) return isoTimestamp(ms);
    if (s !== second) {
      second = s;
      // "YYYY-MM-DDTHH:MM:SS." of an ISO string; years past 9999 have a longer prefix, so cut at the dot.
      const iso = isoTimestamp(s * 1000);
      prefix = iso.slice(0, iso.lastIndexOf('.') + 1);
    }
    return `${prefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
  };
}

const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Escapes a text value for COPY text format; ids and codes rarely need it, so test first. */
export function copyText(value: string): string {
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c] ?? c) : value;
}
