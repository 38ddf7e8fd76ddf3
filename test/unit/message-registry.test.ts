// The message-kind registry: which kinds a cause event sends (ops alerts first), and that every
// registered kind has its templates declared.
import { describe, expect, it } from 'vitest';
import { channels } from '../../lib/channels/registry.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { kindsFor, messageKinds } from '../../lib/messages/registry.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';

const ids = (type: string, detector: string, kind: string) =>
  kindsFor({ type, payload: { detector, kind } }).map((k) => k.id);

describe('kindsFor', () => {
  it('sends a cause event the kinds that follow its detector, event type and cause kind, ops alerts first', () => {
    expect(ids('opened', 'payment-health', 'failures')).toEqual(['ops-incident-opened', 'payment-degraded']);
    expect(ids('resolved', 'payment-health', 'slow')).toEqual(['ops-incident-resolved', 'payment-recovered']);
    expect(ids('opened', 'inventory', 'low-stock')).toEqual(['ops-stock-low', 'stock-low']);
    expect(ids('opened', 'inventory', 'restock')).toEqual(['restock-alert']);
    expect(ids('wave', 'inventory', 'restock')).toEqual(['restock-alert']);
    expect(ids('resolved', 'inventory', 'restock')).toEqual([]);
    expect(ids('opened', 'error-spikes', 'count')).toEqual(['ops-error-spike']);
    expect(ids('opened', 'nobody', 'failures')).toEqual([]);
  });
});

describe('the registry', () => {
  it('declares each kind once, with templates for each of its channels', async () => {
    const config = await loadConfigFile(SHIPPED_CONFIG);
    expect(new Set(messageKinds.map((k) => k.id)).size).toBe(messageKinds.length);
    for (const kind of messageKinds) {
      const template = (templateKinds as Record<string, { channels: readonly string[]; audience: string }>)[
        kind.id
      ];
      expect(template, `${kind.id} has no template kind in templates/kinds.ts`).toBeDefined();
      // A channel may render with another channel's templates (the webhook carries the email copy).
      for (const channel of kind.channels(config))
        expect(template!.channels, `${kind.id} on ${channel}`).toContain(
          channels.get(channel)?.template ?? channel,
        );
      expect(template!.audience, kind.id).toBe(kind.category === 'ops' ? 'ops' : 'users');
    }
  });
});
