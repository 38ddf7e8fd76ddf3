// The registered kinds' stale rules, as one filter for the delivery claim: each due message whose
// kind has a rule is judged by it, in one call per kind.
import type { StaleRules } from '../notifications/store.ts';
import type { MessageContext, QueuedMessage } from './kind.ts';
import { messageKinds } from './registry.ts';

export function staleRules(ctx: Omit<MessageContext, 'linkKeys'>): StaleRules {
  const ruled = messageKinds.filter((k) => k.stale);
  return {
    kinds: ruled.map((k) => k.id),
    async pick(messages: QueuedMessage[]): Promise<Set<string>> {
      const stale = new Set<string>();
      for (const kind of ruled) {
        const own = messages.filter((m) => m.kind === kind.id);
        if (own.length > 0) for (const id of await kind.stale!(ctx.db, ctx, own)) stale.add(id);
      }
      return stale;
    },
  };
}
