// `forewarn start` as real child processes for integration tests: spawn with a clean environment,
// read the JSON log lines back from stderr, signal, await the exit, and kill whatever a failed
// test left running. Also the fixtures such a daemon needs: a config file and a platform schema.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { escapeIdentifier } from 'pg';
import { isMap, parseDocument } from 'yaml';
import { seedPlatform } from '../../sim/load.ts';
import { referencePlatform } from '../../sim/platform.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { REDIS_URL, waitFor } from './services.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHIPPED_CONFIG = join(ROOT, 'config/forewarn.yaml');

export type LogLine = Record<string, unknown> & { msg?: string; time?: string; level?: string };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process was seen to exit. */
  at: number;
}

export interface DaemonEnv {
  DATABASE_URL: string;
  FOREWARN_QUEUE_PREFIX: string;
  FOREWARN_CONFIG: string;
  PLATFORM_SCHEMA?: string;
  REDIS_URL?: string;
  LOG_LEVEL?: string;
}

export class DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  private out = '';
  private err = '';
  private exit: Exit | undefined;

  constructor(child: ChildProcess) {
    if (child.pid === undefined) throw new Error('forewarn start: the child process was not spawned');
    this.child = child;
    this.pid = child.pid;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.out += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** The JSON log lines written so far; anything else on stderr (a plain error message) is skipped. */
  logs(): LogLine[] {
    const lines: LogLine[] = [];
    for (const line of this.err.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // A line still being written.
      }
    }
    return lines;
  }

  /** Log lines whose message contains `text`. */
  logged(text: string): LogLine[] {
    return this.logs().filter((line) => String(line.msg).includes(text));
  }

  async waitForLog(text: string, timeoutMs = 20_000): Promise<LogLine> {
    return waitFor(
      `pid ${this.pid} to log "${text}"`,
      async () => {
        if (!this.running) throw new Error(`pid ${this.pid} exited before logging "${text}":\n${this.err}`);
        return this.logged(text)[0];
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  /** Sends the signal and returns when it was sent (Date.now()). */
  signal(signal: NodeJS.Signals): number {
    const at = Date.now();
    this.child.kill(signal);
    return at;
  }

  /** Waits for the exit, killing the process when it takes longer than `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'timeout');
    });
    try {
      const result = await Promise.race([this.exited, timeout]);
      if (result !== 'timeout') return result;
    } finally {
      clearTimeout(timer);
    }
    await this.kill();
    throw new Error(`pid ${this.pid} did not exit within ${timeoutMs} ms; killed. stderr:\n${this.err}`);
  }

  /** SIGKILL if still running; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** The processes a test started, so that afterEach can kill any a failed test left behind. */
export class Daemons {
  private readonly all: DaemonProcess[] = [];

  start(env: DaemonEnv, args: string[] = []): DaemonProcess {
    const child = spawn(process.execPath, ['bin/forewarn.js', 'start', ...args], {
      cwd: ROOT,
      // A clean environment: nothing from the developer's shell changes what is tested.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        // The sources, even with NODE_ENV=production: a clean clone has no dist/.
        FOREWARN_CODE: 'src',
        REDIS_URL,
        PLATFORM_SCHEMA: 'platform',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new DaemonProcess(child);
    this.all.push(daemon);
    return daemon;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.all.map((d) => d.kill()));
    this.all.length = 0;
  }
}

/**
 * Writes the shipped config to `file` with the payment-health schedule, enabled flag, grace period
 * and any other line-level edits replaced; returns the path. The other registered detectors are
 * switched off (unless `otherDetectors`), so that a daemon test's ticks are payment health's alone
 * however many watchers the registry lists.
 */
export async function writeConfig(
  file: string,
  options: {
    schedule?: string;
    graceSeconds?: number;
    enabled?: boolean;
    replace?: Array<[RegExp, string]>;
    otherDetectors?: boolean;
  } = {},
): Promise<string> {
  let text = await readFile(SHIPPED_CONFIG, 'utf8');
  const edits: Array<[RegExp, string]> = [...(options.replace ?? [])];
  if (options.schedule !== undefined) edits.push([/^(\s*schedule:).*$/m, `$1 "${options.schedule}"`]);
  if (options.graceSeconds !== undefined)
    edits.push([/^(\s*graceSeconds:).*$/m, `$1 ${options.graceSeconds}`]);
  if (options.enabled !== undefined) edits.push([/^(\s*enabled:).*$/m, `$1 ${options.enabled}`]);
  for (const [pattern, replacement] of edits) {
    const next = text.replace(pattern, replacement);
    if (next === text) throw new Error(`writeConfig: ${pattern} matches nothing in ${SHIPPED_CONFIG}`);
    text = next;
  }
  if (!options.otherDetectors) {
    const doc = parseDocument(text);
    const detectors = doc.get('detectors');
    if (isMap(detectors))
      for (const item of detectors.items) {
        const key = String((item.key as { value?: unknown }).value ?? item.key);
        if (key !== 'paymentHealth') doc.setIn(['detectors', key, 'enabled'], false);
      }
    text = String(doc);
  }
  await writeFile(file, text);
  return file;
}

/**
 * The platform's tables in `schema` with the reference channels and no attempts. With
 * `slowChannelsSeconds`, payment_channels becomes a view that sleeps that long on every read, so
 * a detector job stays running for a known time.
 */
export async function createPlatform(
  pool: pg.Pool,
  options: { schema?: string; slowChannelsSeconds?: number } = {},
): Promise<void> {
  const schema = options.schema ?? 'platform';
  const s = escapeIdentifier(schema);
  const client = await pool.connect();
  try {
    await createPlatformSchema(client, schema);
    await seedPlatform(client, schema, referencePlatform(), []);
    if (options.slowChannelsSeconds !== undefined) {
      await client.query(`ALTER TABLE ${s}.payment_channels RENAME TO payment_channels_t`);
      await client.query(
        `CREATE VIEW ${s}.payment_channels AS
           SELECT c.* FROM ${s}.payment_channels_t c, pg_sleep(${Number(options.slowChannelsSeconds)})`,
      );
    }
  } finally {
    client.release();
  }
}

/** The pid inside a worker id (`${hostname}:${pid}:${random}`). */
export function workerPid(workerId: string): number {
  const pid = Number(workerId.split(':').at(-2));
  if (!Number.isInteger(pid)) throw new Error(`worker id without a pid: ${workerId}`);
  return pid;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
