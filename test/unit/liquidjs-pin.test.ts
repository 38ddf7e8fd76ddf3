// The email fast path's analysis (lib/templates/splice.ts) reads liquidjs' parsed templates and
// tokens, fields its types call private among them, so it holds only for the liquidjs it was
// checked against: that version is pinned exactly, in package.json and the lock file, and is the
// one installed. (Under any other version the analysis gives up and every message is rendered
// in full, slower but right; splice.test.ts checks that.)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { installedLiquidjs, VERIFIED_LIQUIDJS } from '../../lib/templates/splice.ts';

const ROOT = new URL('../../', import.meta.url);
const readJson = (path: string): unknown => JSON.parse(readFileSync(new URL(path, ROOT), 'utf8'));

const RECHECK =
  'lib/templates/splice.ts reads liquidjs internals; check its walk against the new version (every template class and token kind, AssignTag.key/value, Filter.handler), run test/unit/shapes*.test.ts and splice.test.ts, then set VERIFIED_LIQUIDJS. Until then every email is rendered in full';

describe('liquidjs pin', () => {
  it('installs the liquidjs version the fast path analysis was verified against', () => {
    const installed = (createRequire(import.meta.url)('liquidjs/package.json') as { version: string })
      .version;
    expect(installed, `liquidjs ${installed} is installed, not ${VERIFIED_LIQUIDJS}: ${RECHECK}`).toBe(
      VERIFIED_LIQUIDJS,
    );
    expect(installedLiquidjs).toBe(installed);
  });

  it('pins exactly that version in package.json and package-lock.json', () => {
    const manifest = readJson('package.json') as { dependencies: Record<string, string> };
    expect(
      manifest.dependencies.liquidjs,
      `package.json must pin liquidjs exactly (npm install --save-exact liquidjs@${VERIFIED_LIQUIDJS}): ${RECHECK}`,
    ).toBe(VERIFIED_LIQUIDJS);
    const lock = readJson('package-lock.json') as {
      packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
    };
    expect(lock.packages['']?.dependencies?.liquidjs, 'package-lock.json, the root package').toBe(
      VERIFIED_LIQUIDJS,
    );
    expect(
      lock.packages['node_modules/liquidjs']?.version,
      `package-lock.json resolves another liquidjs: ${RECHECK}`,
    ).toBe(VERIFIED_LIQUIDJS);
  });
});
