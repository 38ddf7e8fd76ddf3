// `npm run bench [name...]`: runs the benchmarks and prints their figures. Benchmarks measure;
// they never fail a build. Names: backtest, detection, email, fanout, inactivity, inventory, metrics, policy, restock,
// scenarios, slow-relay, startup.
import { benchBacktest } from './backtest.ts';
import { benchEmailDelivery } from './delivery.ts';
import { benchDetection } from './detection.ts';
import { benchFanout } from './fanout.ts';
import { benchInactivity } from './inactivity.ts';
import { benchMetrics } from './metrics.ts';
import { benchPolicy } from './policy.ts';
import { benchRestock } from './restock.ts';
import { benchInventory } from './inventory.ts';
import { benchScenarios } from './scenarios.ts';
import { benchSlowRelay } from './slow-relay.ts';
import { benchStartup } from './startup.ts';
import { print, type BenchResult } from './support.ts';

const benches: Record<string, () => Promise<BenchResult>> = {
  backtest: benchBacktest,
  detection: benchDetection,
  email: benchEmailDelivery,
  fanout: benchFanout,
  inactivity: benchInactivity,
  metrics: benchMetrics,
  restock: benchRestock,
  inventory: benchInventory,
  policy: benchPolicy,
  scenarios: benchScenarios,
  'slow-relay': benchSlowRelay,
  startup: benchStartup,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark(s): ${unknown.join(', ')}; expected some of ${Object.keys(benches).join(', ')}\n`,
  );
  process.exit(2);
}
process.stdout.write(
  `forewarn benchmarks on node ${process.version}, ${(await import('node:os')).cpus().length} cores\n`,
);
for (const name of wanted.length > 0 ? wanted : Object.keys(benches)) {
  print(await benches[name]!());
}
