// Two databases: PLATFORM_DATABASE_URL may point at another server, so no SQL may join the
// platform's tables with forewarn's (merging happens in code, in keyset order). Every SQL text in
// lib/ that names a platform table through its configured schema must name no forewarn table.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const PLATFORM_TABLES = [
  'users',
  'payment_attempts',
  'payment_channels',
  'products',
  'orders',
  'restock_subscriptions',
];
/** `${s}.users`, `${escapeIdentifier(schema)}.orders`: a platform table in its configured schema. */
const platformTable = new RegExp(`\\$\\{[^}]+\\}\\.(${PLATFORM_TABLES.join('|')})\\b`);
const forewarnTable = /\bforewarn\.[a-z_]+/;

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true });
  const files: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) files.push(...(await sources(path)));
    else if (e.name.endsWith('.ts')) files.push(path);
  }
  return files;
}

/** The template literals of a source text that name tables of both databases. */
function crossDatabaseQueries(text: string): string[] {
  const literals = text.match(/`[^`]*`/g) ?? [];
  return literals.filter((sql) => platformTable.test(sql) && forewarnTable.test(sql));
}

describe('no SQL joins the platform database with forewarn’s', () => {
  it('recognises a query that would', () => {
    const joined =
      'const q = `SELECT 1 FROM ${s}.users u JOIN forewarn.notifications n ON n.user_id = u.id`;';
    expect(crossDatabaseQueries(joined)).toHaveLength(1);
    expect(crossDatabaseQueries('const q = `SELECT 1 FROM ${s}.users u`;')).toEqual([]);
    expect(crossDatabaseQueries('const q = `SELECT 1 FROM forewarn.inbox`;')).toEqual([]);
  });

  it('finds none in lib/', async () => {
    const found: string[] = [];
    let platformQueries = 0;
    for (const file of await sources('lib')) {
      const text = await readFile(join(root, file), 'utf8');
      platformQueries += (text.match(/`[^`]*`/g) ?? []).filter((sql) => platformTable.test(sql)).length;
      for (const sql of crossDatabaseQueries(text)) found.push(`${file}: ${sql.slice(0, 120)}`);
    }
    // The scan sees the platform readers' queries (audience, attempts, channels, ...).
    expect(platformQueries).toBeGreaterThanOrEqual(4);
    expect(found).toEqual([]);
  });
});
