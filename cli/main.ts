// forewarn's command line: every command, its options and help. Usage mistakes exit 2 with a
// message that says what was expected; failures at run time exit 1.
import { Command, CommanderError, Help } from 'commander';
import { ForewarnError, UsageError } from '../lib/errors.ts';
import { COMMAND_MODULES } from './commands/index.ts';
import { readManifest } from './manifest.ts';

const program = new Command('forewarn')
  .description('Proactive customer service for digital-goods platforms: detect trouble, warn users first.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

// The command named on the command line (the root's own options are all flags; `help <command>`
// names the command after it).
const words = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const named = words[0] === 'help' ? words[1] : words[0];
const manifest = readManifest();
const entry = manifest?.find((c) => c.name === named);
if (entry) {
  // The compiled build, and a known command: its module alone.
  await COMMAND_MODULES[entry.module]!().then((register) => register(program));
} else if (manifest) {
  // No command, or an unknown one: the list from the manifest is all that help and the
  // unknown-command error need.
  const terms = new Map(manifest.map((c) => [c.name, c.term]));
  program.configureHelp({
    subcommandTerm(command) {
      return terms.get(command.name()) ?? Help.prototype.subcommandTerm.call(this, command);
    },
  });
  for (const c of manifest) program.command(c.name).description(c.description);
} else {
  for (const load of Object.values(COMMAND_MODULES)) (await load())(program);
}

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
