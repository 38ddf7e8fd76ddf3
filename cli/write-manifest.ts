// `npm run build`'s last step: writes the command manifest (cli/manifest.ts) beside the compiled
// cli/main.js, from the compiled command modules themselves.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildManifest, MANIFEST_FILE } from './manifest.ts';

const entries = await buildManifest();
writeFileSync(MANIFEST_FILE, `${JSON.stringify(entries, null, 2)}\n`);
process.stdout.write(`command manifest: ${entries.length} commands in ${fileURLToPath(MANIFEST_FILE)}\n`);
