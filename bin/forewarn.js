#!/usr/bin/env node
// The `forewarn` command. The project is TypeScript run through tsx's loader, so there is no
// build step and no build output to go stale.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
