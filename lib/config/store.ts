// The running daemon's view of the config: the last good file, replaced when the file changes or
// on SIGHUP. A file that fails validation is refused with its problems logged, and the last good
// config stays in force.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Logger } from '../logger.ts';
import { ConfigError } from '../errors.ts';
import { loadConfigFile } from './load.ts';
import type { Config } from './schema.ts';

export class ConfigStore extends EventEmitter<{ change: [Config, Config]; rejected: [Error] }> {
  readonly path: string;
  private current: Config;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private readonly logger: Logger;

  private constructor(path: string, initial: Config, logger: Logger) {
    super();
    this.path = path;
    this.current = initial;
    this.logger = logger.child({ component: 'config' });
  }

  /** Loads the file once; an invalid file at start-up is an error, not a fallback. */
  static async open(path: string, logger: Logger): Promise<ConfigStore> {
    return new ConfigStore(path, await loadConfigFile(path), logger);
  }

  get(): Config {
    return this.current;
  }

  /** Re-reads the file. Resolves true when the new config is in force. Calls are serialised. */
  reload(): Promise<boolean> {
    this.reloading = this.reloading.then(() => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow(): Promise<boolean> {
    try {
      const next = await loadConfigFile(this.path);
      const previous = this.current;
      if (JSON.stringify(next) === JSON.stringify(previous)) return true;
      this.current = next;
      this.logger.info({ file: this.path }, 'config reloaded');
      this.emit('change', next, previous);
      return true;
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : undefined;
      this.logger.error(
        { file: this.path, err: error, problems },
        'config reload refused; the last good config stays in force',
      );
      this.emit('rejected', error as Error);
      return false;
    }
  }

  /** Watches the file's folder (editors often replace the file rather than write it in place). */
  watch(): void {
    if (this.watcher) return;
    const file = basename(this.path);
    this.watcher = watch(dirname(resolve(this.path)), (_event, name) => {
      if (name !== null && name !== file) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload(), 200);
    });
    this.watcher.on('error', (error) =>
      this.logger.warn({ err: error }, 'config watch failed; SIGHUP still reloads'),
    );
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
