// The compiled build (`npm run build`, tsc with tsconfig.build.json) as production runs it: in a
// package of its own (the repo's package.json, node_modules, migrations/, templates/ and config/
// linked in, bin/forewarn.js copied, dist/ compiled into it), with NODE_ENV=production. Before the
// build that package refuses to run (no silent fall-back to tsx); after it, --help (from the
// command manifest the build writes, the same text as the sources print), templates lint and
// migrate run from dist/. tsc takes a minute or so.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
let pkg: string;
let db: TestDatabase;

/** `node <pkg>/bin/forewarn.js ...args` in production; never throws, returns the exit code. */
async function forewarn(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(pkg, 'bin/forewarn.js'), ...args], {
      cwd: pkg,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  pkg = await mkdtemp(join(tmpdir(), 'forewarn-build-'));
  // What the image has besides dist/ (its Dockerfile copies the checkout): lib/ holds the
  // studio's browser script, read at run time.
  for (const entry of ['package.json', 'node_modules', 'migrations', 'templates', 'config', 'lib'])
    await symlink(join(ROOT, entry), join(pkg, entry));
  await mkdir(join(pkg, 'bin'));
  await copyFile(join(ROOT, 'bin/forewarn.js'), join(pkg, 'bin/forewarn.js'));
  db = await createTestDatabase({ migrated: false });
});

afterAll(async () => {
  await db?.drop();
  if (pkg) await rm(pkg, { recursive: true, force: true });
});

describe('the compiled build', () => {
  it('is required in production: without dist/ the command says to run npm run build', async () => {
    const result = await forewarn(['--help']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error [FW_BUILD_MISSING]');
    expect(result.stderr).toContain('npm run build');
    expect(result.stdout).toBe('');
  });

  it('compiles, and runs --help, templates lint and migrate from dist/', async () => {
    // What `npm run build` runs, into the package's own dist/ instead of the repo's.
    await run(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(pkg, 'dist'),
      ],
      { cwd: ROOT },
    );

    // npm run build's last step: the command manifest, from the compiled modules.
    await run(process.execPath, [join(pkg, 'dist/cli/write-manifest.js')], { cwd: pkg });

    // The help from the manifest alone is the help of the sources, which load every command.
    const help = await forewarn(['--help']);
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    const fromSources = await run(process.execPath, [join(ROOT, 'bin/forewarn.js'), '--help'], {
      env: { PATH: process.env.PATH ?? '', FOREWARN_CODE: 'src' },
    });
    expect(help.stdout).toBe(fromSources.stdout);
    expect(help.stdout).toContain('Usage: forewarn');
    expect(help.stdout).toMatch(/^ {2}incidents +list and show incidents/m);
    // An unknown command is refused as before; a known one loads its module and runs.
    expect(await forewarn(['no-such-command'])).toMatchObject({ code: 2 });

    const lint = await forewarn(['templates', 'lint']);
    expect(lint.stderr).toBe('');
    expect(lint.code).toBe(0);
    expect(lint.stdout).toMatch(/^templates: ok, \d+ templates/);

    const migrate = await forewarn(['migrate'], { DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
    expect(migrate.stderr).toBe('');
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toContain('schema forewarn at version');
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM forewarn.schema_migrations');
    expect(rows[0].n).toBeGreaterThan(0);
  }, 600_000);
});
