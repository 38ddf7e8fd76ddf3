// What most commands need: the environment, a logger on stderr, and the config file.
import { readEnv, type Env } from '../../lib/env.ts';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';

export function commandEnv(): { env: Env; logger: Logger } {
  const env = readEnv();
  return { env, logger: createLogger({ level: env.logLevel }) };
}

export async function commandConfig(env: Env, override?: string): Promise<Config> {
  return loadConfigFile(override ?? env.configPath);
}
