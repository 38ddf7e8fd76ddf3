// forewarn's command line: every command, its options and help. Usage mistakes exit 2 with a
// message that says what was expected; failures at run time exit 1.
import { Command, CommanderError } from 'commander';
import { ForewarnError, UsageError } from '../lib/errors.ts';
import { registerBacktest } from './commands/backtest.ts';
import { registerConfig } from './commands/config.ts';
import { registerDeliveries } from './commands/deliveries.ts';
import { registerDemo } from './commands/demo.ts';
import { registerIncidents } from './commands/incidents.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerOps } from './commands/ops.ts';
import { registerRun } from './commands/run.ts';
import { registerStart } from './commands/start.ts';
import { registerTemplates } from './commands/templates.ts';

const program = new Command('forewarn')
  .description('Proactive customer service for digital-goods platforms: detect trouble, warn users first.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerMigrate(program);
registerConfig(program);
registerStart(program);
registerRun(program);
registerBacktest(program);
registerIncidents(program);
registerDeliveries(program);
registerOps(program);
registerDemo(program);
registerTemplates(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeOf(error);
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander; they exit 0. Everything else is a usage error.
    return error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.version' ||
      error.code === 'commander.help'
      ? 0
      : 2;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error [${error.code}]: ${error.message}\n`);
    return 2;
  }
  if (error instanceof ForewarnError) {
    process.stderr.write(`error [${error.code}]: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 1;
}
