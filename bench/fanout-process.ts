// One fan-out run in a process of its own, for bench/fanout.ts: `node --import tsx
// bench/fanout-process.ts '<FanoutOptions as JSON>'` runs a 2,000-user warm-up of the same kind
// (so the measured run does not pay for JIT compilation), then the run, and prints its
// FanoutRun as the last line of stdout.
import { fanOut, type FanoutOptions } from './fanout.ts';

const options = parseOptions(process.argv[2]);
if (!options || typeof options.audience !== 'number' || !['inapp', 'email'].includes(options.channel)) {
  process.stderr.write(
    `fanout-process: expected one argument, JSON such as {"audience":1000,"channel":"inapp"}, got ${JSON.stringify(process.argv[2])}\n`,
  );
  process.exit(2);
}
await fanOut({ ...options, audience: 2_000, warmUp: true });
process.stdout.write(`${JSON.stringify(await fanOut(options))}\n`);

function parseOptions(text: string | undefined): FanoutOptions | null {
  try {
    return JSON.parse(text ?? 'null') as FanoutOptions | null;
  } catch {
    return null;
  }
}
