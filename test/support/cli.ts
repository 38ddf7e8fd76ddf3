// Running the real `forewarn` command in a child process, as ops would, with a clean environment
// (nothing from the developer's shell changes what is tested) plus what the test sets.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  /** The exit code, or null when the process was killed by a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function runForewarn(
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/forewarn.js', ...args],
      {
        cwd: ROOT,
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
        // The sources, even where a test sets NODE_ENV=production: a clean clone has no dist/ (the
        // build test runs the compiled code on its own).
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          FOREWARN_CODE: 'src',
          ...options.env,
        },
      },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          signal: error?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}
