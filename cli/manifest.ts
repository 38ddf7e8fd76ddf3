// The command manifest of the compiled build (as oclif's oclif.manifest.json): each top-level
// command's name, help term, description and module, written by `npm run build` from the very
// code it compiled (cli/write-manifest.ts). With it, `forewarn --help` prints the command list
// without loading a single command module, and `forewarn <command>` loads that command's module
// only. The sources have no manifest: development loads every module, so it can never be stale.
import { readFileSync } from 'node:fs';
import { Command, Help } from 'commander';
import { COMMAND_MODULES } from './commands/index.ts';

export interface ManifestEntry {
  /** The command's name, e.g. "incidents". */
  name: string;
  /** What the help lists it as, e.g. "incidents [options] [command]". */
  term: string;
  description: string;
  /** Its key in COMMAND_MODULES. */
  module: string;
}

/** Beside the compiled cli/main.js: dist/cli/commands.json. */
export const MANIFEST_FILE = new URL('./commands.json', import.meta.url);

/** The manifest of the modules as they are: each loaded and registered on a program of its own. */
export async function buildManifest(): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  const help = new Help();
  for (const [module, load] of Object.entries(COMMAND_MODULES)) {
    const program = new Command('forewarn');
    (await load())(program);
    for (const command of program.commands)
      entries.push({
        name: command.name(),
        term: help.subcommandTerm(command),
        description: command.description(),
        module,
      });
  }
  return entries;
}

/** The build's manifest, or null when there is none (the sources). */
export function readManifest(file: URL = MANIFEST_FILE): ManifestEntry[] | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return JSON.parse(text) as ManifestEntry[];
}
