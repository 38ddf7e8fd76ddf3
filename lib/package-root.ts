// The directory of forewarn's package.json: where the files the code reads at run time live
// (migrations/, templates/). Found by walking up from this module rather than by a fixed `../..`,
// because the same module runs from the sources (lib/package-root.ts) and from the compiled build
// (dist/lib/package-root.js, one level deeper); the build holds code only, never copies of them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'forewarn'
    )
      return dir;
    if (dirname(dir) === dir)
      throw new Error(`no package.json of forewarn above ${from}: the code must run inside its package`);
  }
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the package, e.g. fromPackageRoot('templates'). */
export function fromPackageRoot(...segments: string[]): string {
  return join(packageRoot, ...segments);
}
