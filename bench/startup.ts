// `npm run bench startup`: how long `forewarn --help` takes, from the compiled build (what
// production runs, NODE_ENV=production) next to the TypeScript sources through tsx (development).
// Each start is a fresh process, alternating between the two; the median of 10 each. The build
// must exist: `npm run build` first.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { figure, median, type BenchResult } from './support.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../bin/forewarn.js', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const MANIFEST = fileURLToPath(new URL('../dist/cli/commands.json', import.meta.url));
const RUNS = 10;

async function startMs(code: 'dist' | 'src'): Promise<number> {
  const started = performance.now();
  await run(process.execPath, [BIN, '--help'], { env: { ...process.env, FOREWARN_CODE: code } });
  return performance.now() - started;
}

export async function benchStartup(): Promise<BenchResult> {
  if (!existsSync(DIST) || !existsSync(MANIFEST))
    throw new Error(`${DIST} or its command manifest is missing: run \`npm run build\` first`);
  const times = { dist: [] as number[], src: [] as number[], node: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    times.dist.push(await startMs('dist'));
    times.src.push(await startMs('src'));
    const started = performance.now();
    await run(process.execPath, ['-e', '0']);
    times.node.push(performance.now() - started);
  }
  return {
    name: 'startup: forewarn --help',
    figures: [
      figure('compiled build (dist/, production), median of 10', median(times.dist), 'ms'),
      figure('TypeScript sources through tsx (development), median of 10', median(times.src), 'ms'),
      figure('node -e 0 on this machine, for scale, median of 10', median(times.node), 'ms'),
    ],
  };
}
