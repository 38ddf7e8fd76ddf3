// The message-kind registry: every kind forewarn sends, listed by watcher. Fan-out and delivery
// iterate over it and name no kind themselves (test/unit/spine-names.test.ts).
import type { MessageKind } from './kind.ts';
import { errorSpikesMessageKinds } from './error-spikes.ts';
import { inactivityMessageKinds } from './inactivity.ts';
import { inventoryMessageKinds } from './inventory.ts';
import { restockAlert } from './inventory-restock.ts';
import { paymentHealthKinds } from './payment-health.ts';

export const messageKinds: readonly MessageKind[] = [
  ...paymentHealthKinds,
  ...errorSpikesMessageKinds,
  ...inventoryMessageKinds,
  restockAlert,
  ...inactivityMessageKinds,
] as unknown as readonly MessageKind[];

/** The kinds a cause event sends, ops alerts first (they must not wait behind users' batches). */
export function kindsFor(event: {
  type: string;
  payload: { detector: string; kind: string };
}): MessageKind[] {
  return messageKinds
    .filter(
      (k) =>
        k.on.detector === event.payload.detector &&
        k.on.events.includes(event.type) &&
        (k.on.kinds === undefined || k.on.kinds.includes(event.payload.kind)),
    )
    .sort((a, b) => Number(b.category === 'ops') - Number(a.category === 'ops'));
}

export function findMessageKind(id: string): MessageKind | undefined {
  return messageKinds.find((k) => k.id === id);
}

// Each kind is declared once.
const seen = new Set<string>();
for (const kind of messageKinds) {
  if (seen.has(kind.id)) throw new Error(`message kind "${kind.id}" is registered twice`);
  seen.add(kind.id);
}
