// The spine names no watcher: the generic modules below know detectors only through the registry
// (lib/detection/registry.ts), so a new watcher touches its own files and one registry line. Each
// registered detector's name, in any spelling (payment-health, paymentHealth, PaymentHealth,
// payment_health, "payment health"; in code, strings, comments and import paths), must be absent
// from every one of them.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { registeredDetectors } from '../../lib/detection/registry.ts';
import { messageKinds } from '../../lib/messages/registry.ts';

/** The generic modules: scheduler, tick runner, detection jobs, job registry, fan-out, delivery, CLI. */
const SPINE_MODULES = [
  'lib/scheduler.ts',
  'lib/detection/detector.ts',
  'lib/detection/tick.ts',
  'lib/detection/paged.ts',
  'lib/detection/state.ts',
  'lib/detection/record-changes.ts',
  'jobs/detect.ts',
  'jobs/registry.ts',
  'jobs/fanout-incident-event.ts',
  'jobs/deliver-notifications.ts',
  'jobs/deliver-ops-alerts.ts',
  'jobs/sweep-notifications.ts',
  'workers/detection.ts',
  'workers/fanout.ts',
  'workers/delivery.ts',
  'workers/ops-alerts.ts',
  'lib/notifications/fanout.ts',
  'lib/notifications/deliver.ts',
  'lib/notifications/store.ts',
  'lib/notifications/render.ts',
  'lib/notifications/lease.ts',
  'lib/notifications/policy.ts',
  'lib/notifications/rates.ts',
  'lib/policy/quiet-hours.ts',
  'lib/policy/preferences.ts',
  'lib/http/routes/preferences.ts',
  'lib/messages/kind.ts',
  'lib/messages/shared.ts',
  'lib/messages/stale.ts',
  'lib/messages/unsubscribe.ts',
  'lib/http/routes/unsubscribe.ts',
  'lib/links.ts',
  'lib/notifications/ops-groups.ts',
  'lib/notifications/deliver-groups.ts',
  'lib/notifications/outcomes.ts',
  'lib/notifications/reports.ts',
  'lib/templates/local-time.ts',
  'lib/channels/email.ts',
  'lib/channels/channel.ts',
  'lib/channels/registry.ts',
  'lib/channels/inline.ts',
  'lib/channels/email-channel.ts',
  'lib/channels/inapp-channel.ts',
  'lib/queue/queues.ts',
  'lib/queue/identity.ts',
  'lib/daemon.ts',
  'lib/context.ts',
  'lib/config/schema.ts',
  'lib/config/load.ts',
  'cli/commands/run.ts',
  'cli/commands/backtest.ts',
  'lib/backtest/report-series.ts',
  'lib/backtest/report-html.ts',
  'cli/commands/config.ts',
  'cli/commands/deliveries.ts',
];

/** Every spelling of a detector's name: its id's words joined by nothing, "-", "_" or a space, in any case. */
function watcherName(id: string): RegExp {
  return new RegExp(id.split('-').join('[-_ ]?'), 'gi');
}

/** The watcher names a source text holds, with their lines. */
function watcherNamesIn(text: string, ids: readonly string[]): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const id of ids)
      for (const match of line.matchAll(watcherName(id))) found.push(`line ${i + 1}: ${match[0]}`);
  });
  return found;
}

const root = new URL('../../', import.meta.url);
const ids = registeredDetectors.map((d) => d.id);

describe('the spine names no watcher', () => {
  it('has watchers to look for, and finds their names where they belong', async () => {
    expect(ids.length).toBeGreaterThan(0);
    // The registry lists them by name: the check would find a name in a spine module too.
    const registry = await readFile(new URL('lib/detection/registry.ts', root), 'utf8');
    expect(watcherNamesIn(registry, ids)).not.toEqual([]);
    for (const id of ids) {
      const spellings = [id, id.replace(/-/g, '_'), id.replace(/-/g, ' ')];
      const camel = id.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      spellings.push(camel, camel[0]!.toUpperCase() + camel.slice(1), `../detectors/${id}/index.ts`);
      for (const spelling of spellings) expect(watcherNamesIn(`x ${spelling} y`, ids)).toHaveLength(1);
    }
  });

  it.each(SPINE_MODULES)('%s', async (file) => {
    const text = await readFile(new URL(file, root), 'utf8');
    expect(
      watcherNamesIn(text, ids),
      `${file} names a watcher; it belongs in the watcher's registry entry`,
    ).toEqual([]);
  });
});

/** A message kind's id as a whole word (payment-degraded, not payment-degraded-x). */
function kindNamesIn(text: string, kinds: readonly string[]): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const kind of kinds)
      if (new RegExp(`(^|[^a-z0-9-])${kind}([^a-z0-9-]|$)`).test(line)) found.push(`line ${i + 1}: ${kind}`);
  });
  return found;
}

describe('the spine names no message kind', () => {
  const kinds = messageKinds.map((k) => k.id);

  it('has kinds to look for, and finds them where they belong', async () => {
    expect(kinds.length).toBeGreaterThan(0);
    for (const kind of kinds) expect(kindNamesIn(`x '${kind}' y`, kinds)).toHaveLength(1);
  });

  it.each(SPINE_MODULES)('%s', async (file) => {
    const text = await readFile(new URL(file, root), 'utf8');
    expect(
      kindNamesIn(text, kinds),
      `${file} names a message kind; it belongs in the kind's declaration`,
    ).toEqual([]);
  });
});
