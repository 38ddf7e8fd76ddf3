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
    const refused = await waitFor(
      'the refused reload to be logged',
      async () => lines().find((l) => String(l.msg).includes('config reload refused')),
      { timeoutMs: 5_000 },
    );
    expect(refused.level).toBe('error');
    expect(refused.component).toBe('config');
    expect(refused.file).toBe(file);
    expect(JSON.stringify(refused.problems)).toContain('detectors.paymentHealth.confirmSeconds');
    expect(store.get()).toBe(initial);
    expect(store.get().detectors.paymentHealth.confirmSeconds).toBe(oldConfirm);
    expect(changes).toHaveLength(0);
    expect(rejected.length).toBeGreaterThan(0);

    await writeFile(file, withConfirmSeconds(String(newConfirm)));
    await waitFor(
      'the valid change to be taken',
      async () => store!.get().detectors.paymentHealth.confirmSeconds === newConfirm,
      { timeoutMs: 5_000 },
    );
    expect(changes).toHaveLength(1);
    const [next, previous] = changes[0]!;
    expect(next.detectors.paymentHealth.confirmSeconds).toBe(newConfirm);
    expect(previous).toBe(initial);
    expect(Object.isFrozen(store.get().detectors.paymentHealth)).toBe(true);
    expect(messages(lines)).toContain('config reloaded');
  });

  it('takes a file replaced by rename, as editors save', async () => {
    const { logger } = captureLogs();
    store = await ConfigStore.open(file, logger);
    const oldConfirm = store.get().detectors.paymentHealth.confirmSeconds;
    const newConfirm = oldConfirm + 7;
    store.watch();
    const temp = join(dir, '.forewarn.yaml.swp');
    await writeFile(temp, withConfirmSeconds(String(newConfirm)));
    await rename(temp, file);
    await waitFor(
      'the replaced file to be taken',
      async () => store!.get().detectors.paymentHealth.confirmSeconds === newConfirm,
      { timeoutMs: 5_000 },
    );
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
