// docs/errors.md is the reference for every error code: each code in lib/errors.ts has a row in
// its table, and the table documents no code that does not exist.
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorCodes } from '../../lib/errors.ts';

const DOC = new URL('../../docs/errors.md', import.meta.url);

let rows: string[];
let documented: string[];

beforeAll(async () => {
  const text = await readFile(DOC, 'utf8');
  rows = text.split('\n').filter((line) => line.trimStart().startsWith('|'));
  // The first cell of a row names the code: | `FW_SOMETHING` | meaning | ...
  documented = rows.flatMap((row) => {
    const match = /^\s*\|\s*`(FW_[A-Z0-9_]+)`\s*\|/.exec(row);
    return match ? [match[1]!] : [];
  });
});

describe('docs/errors.md', () => {
  it('has a table of codes', () => {
    expect(documented.length).toBeGreaterThan(0);
  });

  it.each(Object.keys(errorCodes))('documents %s in a table row', (code) => {
    expect(documented).toContain(code);
    const row = rows.find((r) => r.includes(`\`${code}\``))!;
    // A row has at least code, meaning, cause and remedy, and none of them empty.
    const cells = row
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    expect(cells.length).toBeGreaterThanOrEqual(4);
    expect(cells.every((c) => c.length > 0)).toBe(true);
  });

  it('documents no code that lib/errors.ts does not define', () => {
    const known = new Set(Object.keys(errorCodes));
    expect(documented.filter((code) => !known.has(code))).toEqual([]);
  });

  it('documents each code once', () => {
    expect(documented.filter((code, i) => documented.indexOf(code) !== i)).toEqual([]);
  });
});
