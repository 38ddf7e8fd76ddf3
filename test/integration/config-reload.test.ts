// The live config: a watched file that turns invalid is refused (logged, last good config kept),
// a valid change replaces the config and fires 'change', and reload() says which happened.
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigStore } from '../../lib/config/store.ts';
import type { Config } from '../../lib/config/schema.ts';
import { captureLogs, waitFor } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
/**
 * fs.watch, the store's debounce and the reload take a fraction of a second, but how long on a
 * loaded machine is not what these tests are about: the waits below poll for the log line that
 * says the reload happened, and this deadline only turns a reload that never comes into a failure.
 */
const RELOAD_DEADLINE_MS = 30_000;

let dir: string;
let file: string;
let text: string;
let store: ConfigStore | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-reload-'));
  file = join(dir, 'forewarn.yaml');
  await copyFile(SHIPPED, file);
  text = await readFile(file, 'utf8');
});

afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** The file's text with confirmSeconds set to `value` (the key's line, not a comment). */
function withConfirmSeconds(value: string): string {
  const replaced = text.replace(/^(\s*confirmSeconds:).*$/m, `$1 ${value}`);
  expect(replaced).not.toBe(text);
  return replaced;
}

function messages(lines: () => Array<Record<string, unknown>>): string[] {
  return lines().map((l) => String(l.msg));
}

/** Polls the captured log until a line whose message contains `text` appears; returns it. */
function waitForLine(
  lines: () => Array<Record<string, unknown>>,
  text: string,
): Promise<Record<string, unknown>> {
  return waitFor(`the log line "${text}"`, async () => lines().find((l) => String(l.msg).includes(text)), {
    timeoutMs: RELOAD_DEADLINE_MS,
    intervalMs: 20,
  });
}

describe('ConfigStore', () => {
  it('refuses an invalid file, keeps the last good config, then takes a valid change', async () => {
    const { logger, lines } = captureLogs();
    store = await ConfigStore.open(file, logger);
    const initial = store.get();
    const oldConfirm = initial.detectors.paymentHealth.confirmSeconds;
    const newConfirm = oldConfirm === 42 ? 43 : 42;
    const changes: Array<[Config, Config]> = [];
    const rejected: Error[] = [];
    store.on('change', (next, previous) => changes.push([next, previous]));
    store.on('rejected', (error) => rejected.push(error));
    store.watch();

    await writeFile(file, withConfirmSeconds('-1'));
    const refused = await waitForLine(lines, 'config reload refused');
    expect(refused.level).toBe('error');
    expect(refused.component).toBe('config');
    expect(refused.file).toBe(file);
    expect(JSON.stringify(refused.problems)).toContain('detectors.paymentHealth.confirmSeconds');
    expect(store.get()).toBe(initial);
    expect(store.get().detectors.paymentHealth.confirmSeconds).toBe(oldConfirm);
    expect(changes).toHaveLength(0);
    expect(rejected.length).toBeGreaterThan(0);

    await writeFile(file, withConfirmSeconds(String(newConfirm)));
    await waitForLine(lines, 'config reloaded');
    expect(store.get().detectors.paymentHealth.confirmSeconds).toBe(newConfirm);
    expect(changes).toHaveLength(1);
    const [next, previous] = changes[0]!;
    expect(next).toBe(store.get());
    expect(next.detectors.paymentHealth.confirmSeconds).toBe(newConfirm);
    expect(previous).toBe(initial);
    expect(Object.isFrozen(store.get().detectors.paymentHealth)).toBe(true);
    // In the order the files were written: refused first, then the valid one taken, once.
    const order = messages(lines).filter((m) => /config reload/.test(m));
    expect(order.at(-1)).toBe('config reloaded');
    expect(order.filter((m) => m === 'config reloaded')).toHaveLength(1);
    expect(order.indexOf('config reloaded')).toBeGreaterThan(
      order.findIndex((m) => m.startsWith('config reload refused')),
    );
  });

  it('takes a file replaced by rename, as editors save', async () => {
    const { logger, lines } = captureLogs();
    store = await ConfigStore.open(file, logger);
    const oldConfirm = store.get().detectors.paymentHealth.confirmSeconds;
    const newConfirm = oldConfirm + 7;
    store.watch();
    const temp = join(dir, '.forewarn.yaml.swp');
    await writeFile(temp, withConfirmSeconds(String(newConfirm)));
    await rename(temp, file);
    const reloaded = await waitForLine(lines, 'config reloaded');
    expect(reloaded.file).toBe(file);
    expect(store.get().detectors.paymentHealth.confirmSeconds).toBe(newConfirm);
    // The swap file's own events are not the config's: nothing was refused on the way.
    expect(messages(lines).filter((m) => m.includes('config reload refused'))).toEqual([]);
  });

  it('reload() resolves false for a bad file and true for a good one', async () => {
    const { logger, lines } = captureLogs();
    store = await ConfigStore.open(file, logger);
    const initial = store.get();
    const oldConfirm = initial.detectors.paymentHealth.confirmSeconds;

    await writeFile(file, 'timezone: [unclosed\n');
    expect(await store.reload()).toBe(false);
    expect(store.get()).toBe(initial);
    expect(messages(lines).filter((m) => m.includes('config reload refused'))).toHaveLength(1);

    await rm(file);
    expect(await store.reload()).toBe(false);
    expect(store.get()).toBe(initial);

    await writeFile(file, withConfirmSeconds(String(oldConfirm + 1)));
    expect(await store.reload()).toBe(true);
    expect(store.get().detectors.paymentHealth.confirmSeconds).toBe(oldConfirm + 1);

    // Unchanged content is still "in force" and fires no change.
    let changed = false;
    store.on('change', () => {
      changed = true;
    });
    expect(await store.reload()).toBe(true);
    expect(changed).toBe(false);
  });

  it('open() refuses an invalid file at start-up', async () => {
    await writeFile(file, withConfirmSeconds('"soon"'));
    const { logger } = captureLogs();
    await expect(ConfigStore.open(file, logger)).rejects.toMatchObject({ code: 'FW_CONFIG_INVALID' });
  });
});
