// A delivery job's hold on what it claimed: one token for every chunk it claims, renewed while
// the job works (as BullMQ renews its own job locks), so that no relay is too slow for a claim:
// only a worker that died, hung or lost its database lets one run out. A row that a renewal no
// longer finds was taken over after its claim ran out all the same; the job leaves it alone.
import { randomUUID } from 'node:crypto';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import { renewClaims } from './store.ts';

export interface ClaimLease {
  /** What every claim and outcome of the job is written under. */
  readonly token: string;
  /** Rows just claimed under the token: renewed until `release`d. */
  hold(ids: Iterable<string>): void;
  /** Called before a row's outcome is written: from then on it is the write's to finish. */
  release(id: string): void;
  /** Whether the row was taken over while this job held it. */
  lost(id: string): boolean;
  /** Stops renewing; whatever is still held runs out in `claimSeconds`. */
  stop(): void;
}

export function startLease(db: Pool, claimSeconds: number, log: Logger): ClaimLease {
  const token = randomUUID();
  const held = new Set<string>();
  const lost = new Set<string>();
  let renewing = false;
  // Three renewals per claim period: one may fail or come late without the claim running out.
  const timer = setInterval(
    () => {
      if (renewing || held.size === 0) return;
      renewing = true;
      renewClaims(db, token, claimSeconds)
        .then(
          (ids) => {
            const still = new Set(ids);
            // Compared with what is held now: a row released meanwhile is being finished by us.
            const taken = [...held].filter((id) => !still.has(id));
            for (const id of taken) {
              held.delete(id);
              lost.add(id);
            }
            if (taken.length > 0)
              log.warn(
                { code: 'FW_DELIVERY_CLAIM_LOST', notificationIds: taken },
                `${taken.length} claimed deliveries were taken over by another worker after their claim ran out; left to it`,
              );
          },
          (error: unknown) =>
            log.warn({ err: error }, 'could not renew delivery claims; trying again shortly'),
        )
        .finally(() => (renewing = false));
    },
    Math.max(100, (claimSeconds * 1000) / 3),
  );
  timer.unref();
  return {
    token,
    hold(ids) {
      for (const id of ids) held.add(id);
    },
    release(id) {
      held.delete(id);
    },
    lost: (id) => lost.has(id),
    stop() {
      clearInterval(timer);
      held.clear();
    },
  };
}
