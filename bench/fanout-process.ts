// Fan-out runs in a process of their own, for bench/fanout.ts: `node --expose-gc --import tsx
// bench/fanout-process.ts '<FanoutOptions[] as JSON>'` runs them in order (warm-ups included)
// and prints their FanoutRun results, as one JSON array, on the last line of stdout.
import { fanOut, type FanoutOptions, type FanoutRun } from './fanout.ts';

const runs = parseRuns(process.argv[2]);
if (!runs) {
  process.stderr.write(
    `fanout-process: expected one argument, a JSON array such as [{"audience":1000,"channel":"inapp"}], got ${JSON.stringify(process.argv[2])}\n`,
  );
  process.exit(2);
}
const results: FanoutRun[] = [];
for (const options of runs) results.push(await fanOut(options));
process.stdout.write(`${JSON.stringify(results)}\n`);

function parseRuns(text: string | undefined): FanoutOptions[] | null {
  let value: unknown;
  try {
    value = JSON.parse(text ?? 'null');
  } catch {
    return null;
  }
  const valid = (run: unknown) => {
    const r = run as Partial<FanoutOptions> | null;
    return (
      typeof r === 'object' &&
      r !== null &&
      Number.isInteger(r.audience) &&
      r.audience! > 0 &&
      (r.channel === 'inapp' || r.channel === 'email') &&
      (r.mode === undefined || r.mode === 'pipeline' || r.mode === 'raw') &&
      (r.policy === undefined || typeof r.policy === 'boolean')
    );
  };
  return Array.isArray(value) && value.length > 0 && value.every(valid) ? (value as FanoutOptions[]) : null;
}
