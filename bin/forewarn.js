#!/usr/bin/env node
// The `forewarn` command. Which code it runs is one rule, never a guess:
//   - the compiled build in dist/ (`npm run build`) when FOREWARN_CODE=dist, which is the default
//     when NODE_ENV=production: a missing build stops with an error, never a fall-back to tsx;
//   - the TypeScript sources through tsx (a dev dependency) when FOREWARN_CODE=src, the default
//     otherwise: tests and `npm ci && npm run demo` need no build step, and a stale dist/ is never
//     run by mistake in development.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const code = process.env.FOREWARN_CODE || (process.env.NODE_ENV === 'production' ? 'dist' : 'src');
if (code === 'dist') {
  const main = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(main)) {
    process.stderr.write(
      `error [FW_BUILD_MISSING]: the compiled build is missing (${fileURLToPath(main)} not found). ` +
        `${process.env.FOREWARN_CODE ? 'FOREWARN_CODE=dist' : 'NODE_ENV=production'} runs the compiled code: ` +
        'run `npm run build` first (or set FOREWARN_CODE=src to run the TypeScript sources through tsx).\n',
    );
    process.exit(1);
  }
  // Stack traces name the TypeScript line (the build writes source maps beside each file).
  process.setSourceMapsEnabled(true);
  await import(main.href);
} else if (code === 'src') {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
} else {
  process.stderr.write(`error [FW_USAGE]: FOREWARN_CODE: expected dist or src, got "${code}"\n`);
  process.exit(2);
}
