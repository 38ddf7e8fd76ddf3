// A copy of a config file with a few keys changed, comments kept: how the demo shortens its
// timing and benchmarks size their batches without a second config file to keep in step.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

export type ConfigEdit = readonly [path: readonly string[], value: unknown];

export async function writeConfigVariant(
  basePath: string,
  edits: readonly ConfigEdit[],
  dir: string,
): Promise<string> {
  const doc = parseDocument(await readFile(basePath, 'utf8'));
  for (const [path, value] of edits) doc.setIn(path, value);
  const file = join(dir, 'forewarn.yaml');
  await writeFile(file, doc.toString());
  return file;
}
