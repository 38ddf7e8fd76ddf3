// Rendering a recorded notification with its kind's template, and the one-line reason a failure
// is recorded with. Shared by the fan-out (in-app) and the delivery jobs (email).
import { DeliveryError } from '../channels/delivery-error.ts';
import type { RenderedMessage, TemplateStore } from '../templates/store.ts';
import type { TemplateKind } from '../../templates/kinds.ts';
import type { NotificationDraft } from './store.ts';

/** Throws a permanent TemplateError when the data or the template is wrong. */
export function renderNotification(templates: TemplateStore, n: NotificationDraft): RenderedMessage {
  // Kind, channel and data were written by forewarn and are checked against the kind's schema
  // inside render(); the casts only move that check from compile time to there.
  return templates.render({
    kind: n.kind as TemplateKind,
    channel: n.channel as never,
    locale: n.locale,
    data: n.data as never,
  });
}

export function reasonOf(error: unknown): string {
  if (error instanceof DeliveryError) return `${error.code}: ${error.reason}`;
  if (error instanceof Error) return `${'code' in error ? `${String(error.code)}: ` : ''}${error.message}`;
  return String(error);
}
