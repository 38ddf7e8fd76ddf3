// `forewarn start`: run the daemon until SIGTERM or SIGINT; SIGHUP reloads the config.
import { Option, type Command } from 'commander';
import { DEFAULT_ROLES, ROLES, startDaemon, type Role } from '../../lib/daemon.ts';
import { UsageError } from '../../lib/errors.ts';
import { commandEnv } from './shared.ts';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'run the daemon: the scheduler and the workers, or only the roles given (the HTTP server only with --role http)',
    )
    .addOption(
      new Option(
        '--role <roles>',
        `comma-separated roles to run in this process: ${ROLES.join(', ')}`,
      ).default(DEFAULT_ROLES.join(',')),
    )
    .action(async (options: { role: string }) => {
      const roles = parseRoles(options.role);
      const { env, logger } = commandEnv();
      const daemon = await startDaemon({ env, logger, roles });
      const stop = (signal: string) => {
        // Whatever happens while stopping, the process is gone shortly after the grace period.
        const hardStopMs = daemon.ctx.config().shutdown.graceSeconds * 1000 + 5_000;
        setTimeout(() => process.exit(0), hardStopMs).unref();
        // A forced stop still exits 0: abandoned jobs are retried by BullMQ, nothing is lost.
        void daemon.stop(signal).then(({ forced }) => {
          process.exitCode = 0;
          // After a forced stop an abandoned query may still hold a socket: leave now. Otherwise
          // let the event loop drain, but never let a stray handle keep a stopped daemon alive.
          logger.flush(() => (forced ? process.exit(0) : setTimeout(() => process.exit(0), 1_000).unref()));
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => void daemon.ctx.configStore.reload());
    });
}

function parseRoles(value: string): Role[] {
  const roles = value
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || unknown.length > 0) {
    throw new UsageError(`--role: expected a comma-separated list of ${ROLES.join(', ')}, got "${value}"`);
  }
  return [...new Set(roles)] as Role[];
}
