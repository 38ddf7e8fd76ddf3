// Ops alerts that are no incident's fan-out (a stalled data feed, a maintenance window, the
// watchdog): one draft per ops address and per ops webhook target, recorded like any other
// notification. The dedupe key is the cause, the alert's key (its kind and state) and the
// recipient, so that every replica that records the same alert records the same rows.
import type { Config } from '../config/schema.ts';
import type { NotificationDraft } from './store.ts';

export function opsAlertDrafts(
  ops: Config['notifications']['ops'],
  alert: {
    /** What it is about, e.g. "feed:payment-health:<since>"; the notifications' cause. */
    cause: string;
    kind: string;
    /** The alert within its cause: the kind, with its state when it has several. */
    key: string;
    data: Record<string, unknown>;
  },
): NotificationDraft[] {
  const recipients = [
    ...ops.emails.map((address) => ({ channel: 'email', address })),
    // A webhook target's id is its address (notifications.ops.webhooks).
    ...ops.webhooks.map((target) => ({ channel: 'webhook', address: target })),
  ];
  return recipients.map(({ channel, address }) => ({
    dedupeKey: `${alert.cause}:${alert.key}:${channel}:${address.toLowerCase()}`,
    cause: alert.cause,
    incidentId: null,
    kind: alert.kind,
    channel,
    audience: 'ops' as const,
    userId: null,
    address,
    locale: ops.locale,
    data: alert.data,
    category: 'ops' as const,
  }));
}
