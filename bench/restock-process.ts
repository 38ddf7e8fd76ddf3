// A restock wave in a process of its own, for bench/restock.ts: `node --expose-gc --import tsx
// bench/restock-process.ts <subscribers> <other products per subscriber>` runs benchWave and
// prints its WaveRun, as JSON, on the last line of stdout.
import { benchWave, type WaveRun } from './restock.ts';

const [size, noise] = process.argv.slice(2).map(Number);
if (!Number.isSafeInteger(size) || size! <= 0 || !Number.isSafeInteger(noise) || noise! < 0) {
  process.stderr.write(
    `restock-process: expected two arguments, subscribers (> 0) and other products per subscriber (>= 0), such as "50000 4", got ${JSON.stringify(process.argv.slice(2))}\n`,
  );
  process.exit(2);
}
const run: WaveRun = await benchWave(size!, noise!);
process.stdout.write(`${JSON.stringify(run)}\n`);
