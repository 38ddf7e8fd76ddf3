// `forewarn run <detector>`: one detection pass now, printing what changed.
import { Option, type Command } from 'commander';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext } from '../../lib/context.ts';
import { checkServices } from '../../lib/daemon.ts';
import { runTickAndDispatch } from '../../jobs/detect.ts';
import { detectorIds, findDetector } from '../../lib/detection/registry.ts';
import { findMessageKind } from '../../lib/messages/registry.ts';
import type { CauseEvent } from '../../lib/messages/kind.ts';
import { eventDrafts } from '../../lib/notifications/fanout.ts';
import { capDraftsForDryRun, capRule } from '../../lib/notifications/policy.ts';
import type { NotificationDraft } from '../../lib/notifications/store.ts';
import { ForewarnError } from '../../lib/errors.ts';
import { parseChoice, parseTime } from '../args.ts';
import { commandEnv } from './shared.ts';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'run one detection pass now and print what changed; with --dry-run --format json, the notifications it would send, one JSON object per line',
    )
    .argument('<detector>', `detector to run: ${detectorIds.join(', ')}`, parseChoice(detectorIds))
    .option('--dry-run', 'compute everything, write nothing', false)
    .option('--at <time>', 'evaluate as of this ISO 8601 time instead of now', parseTime)
    .option('--config <file>', 'config file (default: $FOREWARN_CONFIG or config/forewarn.yaml)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      async (
        detectorId: string,
        options: { dryRun: boolean; at?: number; config?: string; format: 'table' | 'json' },
      ) => {
        const { env, logger } = commandEnv();
        const store = await ConfigStore.open(options.config ?? env.configPath, logger);
        const ctx = await createContext(env, store, logger);
        try {
          await checkServices(ctx);
          const detector = findDetector(detectorId)!;
          const result = await runTickAndDispatch(detector.tick, ctx, options.at ?? Date.now(), {
            dryRun: options.dryRun,
          });
          if (result.outcome === 'refused') {
            // A future --at, or this machine's clock running fast: nothing was evaluated.
            throw new ForewarnError('FW_CLOCK_SKEW', `${result.detail ?? 'tick refused'}`);
          }
          if (options.format === 'json' && options.dryRun) {
            // The notifications these changes would cause, one per line; nothing is recorded or sent.
            // Ops alerts carry a null userId and their recipient; every line names the subject. A
            // kind may add its own fields (a check-up's step); a message the delivery policy holds
            // (quiet hours, a cap) says when it would go (sendAt), one it withholds (an opt-out, a
            // cap) says why (withheld).
            const print = (d: NotificationDraft, subject: string, event: CauseEvent) =>
              process.stdout.write(
                `${JSON.stringify({
                  kind: d.kind,
                  userId: d.userId,
                  channel: d.channel,
                  locale: d.locale,
                  dedupeKey: d.dedupeKey,
                  category: d.category,
                  subject,
                  ...(d.audience === 'ops' ? { recipient: d.address } : {}),
                  ...findMessageKind(d.kind)?.summary?.(event),
                  ...(d.notBefore != null ? { sendAt: new Date(d.notBefore).toISOString() } : {}),
                  ...(d.withheldReason != null ? { withheld: d.withheldReason } : {}),
                })}\n`,
              );
            // The caps as they stand at the run's time: what went to each user today counts.
            const caps = capRule(ctx.config(), () => result.tickAt);
            for (const recorded of result.recorded) {
              const event = {
                eventId: recorded.eventId,
                causeId: recorded.incidentId,
                type: recorded.change.type,
                seq: recorded.change.seq ?? 0,
                payload: { ...recorded.change, incidentId: recorded.incidentId },
              };
              for await (const batch of eventDrafts(ctx, event, result.tickAt)) {
                const drafts = caps ? await capDraftsForDryRun(ctx.db, batch.drafts, caps) : batch.drafts;
                for (const draft of drafts) print(draft, recorded.change.subjectKey, event);
              }
            }
            return;
          }
          if (options.format === 'json') {
            for (const change of result.changes) {
              process.stdout.write(
                `${JSON.stringify({ ...change, at: new Date(change.at).toISOString() })}\n`,
              );
            }
            return;
          }
          const when = new Date(result.tickAt).toISOString();
          if (result.outcome === 'stale') {
            process.stdout.write(
              `${when}: the stored state is already newer than this time; nothing evaluated.\n`,
            );
            return;
          }
          process.stdout.write(
            `${detector.id} at ${when}${options.dryRun ? ' (dry run: nothing written)' : ''}: ` +
              `${result.changeCount} change(s), ${result.skippedRows} platform row(s) skipped\n`,
          );
          process.stdout.write(detector.describe(result));
        } finally {
          await ctx.close();
        }
      },
    );
}
