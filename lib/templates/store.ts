// Message templates, loaded once from a directory and rendered on demand. The store loads only a
// directory that passes `lintTemplates`, so at run time the remaining failures are data that
// breaks a kind's schema or a user's locale with no template (which gets zh-CN).
import { fromPackageRoot } from '../package-root.ts';
import {
  isTemplateKind,
  templateKinds,
  type ChannelOf,
  type TemplateChannel,
  type TemplateInput,
  type TemplateKind,
} from '../../templates/kinds.ts';
import { validateTemplateData } from './data.ts';
import { formatProblem, TemplateError } from './errors.ts';
import { inspectTemplates } from './lint.ts';
import { resolveLocale } from './locale.ts';
import type { RenderedMessage } from './render.ts';
import { MessageShapes } from './shapes.ts';
import type { CompiledLayout, CompiledTemplate, Engines } from './source.ts';

export type { RenderedMessage } from './render.ts';
export { validateTemplateData } from './data.ts';

/** The shipped templates: `templates/` at the root of the project. */
export const defaultTemplatesDir = fromPackageRoot('templates');

export interface RenderRequest<K extends TemplateKind> {
  kind: K;
  channel: ChannelOf<K>;
  /** The user's locale (e.g. from `users.locale`); null or unknown gets zh-CN. */
  locale?: string | null;
  data: TemplateInput<K>;
}

export class TemplateStore {
  readonly dir: string;
  /** Per template, its renderer: once per shape of the data, not once per message (shapes.ts). */
  readonly #shapes: ReadonlyMap<string, MessageShapes>;
  /** Per kind and channel, the locales that have a template. */
  readonly #locales = new Map<string, Set<string>>();
  /** Requested locale (per kind and channel) to the one served: canonicalising a tag is slow. */
  readonly #resolved = new Map<string, string>();

  private constructor(
    dir: string,
    engines: Engines,
    templates: readonly CompiledTemplate[],
    layout: CompiledLayout | null,
  ) {
    this.dir = dir;
    for (const t of templates) {
      const key = keyOf(t.kind, t.channel);
      this.#locales.set(key, (this.#locales.get(key) ?? new Set()).add(t.locale));
    }
    this.#shapes = new Map(
      templates.map((t) => [keyOf(t.kind, t.channel, t.locale), new MessageShapes(engines, t, layout)]),
    );
  }

  /**
   * Reads and checks every template in `dir` once. Throws a TemplateError (FW_TEMPLATE_INVALID)
   * listing every problem `forewarn templates lint` would report.
   */
  static async load(dir: string = defaultTemplatesDir): Promise<TemplateStore> {
    const { set, engines } = await inspectTemplates(dir, { bothWays: false });
    if (set.problems.length > 0) {
      throw new TemplateError(
        'FW_TEMPLATE_INVALID',
        `${set.problems.length} problem(s) in the templates in ${dir}:\n${set.problems.map(formatProblem).join('\n')}`,
        { problems: set.problems },
      );
    }
    return new TemplateStore(dir, engines, set.templates, set.layout);
  }

  /** The locales that have a template for this kind and channel, sorted. */
  locales(kind: TemplateKind, channel: TemplateChannel): string[] {
    return [...(this.#locales.get(keyOf(kind, channel)) ?? [])].sort();
  }

  /** The locale a user with `requested` gets: exact, then language only, then zh-CN. */
  resolveLocale(kind: TemplateKind, channel: TemplateChannel, requested: string | null | undefined): string {
    const key = keyOf(kind, channel, requested ?? '');
    let locale = this.#resolved.get(key);
    if (locale === undefined) {
      locale = resolveLocale(this.#locales.get(keyOf(kind, channel)) ?? new Set(), requested);
      // Users' locales are few; a platform full of junk values must not grow this without end.
      if (this.#resolved.size >= RESOLVED_LOCALES_SIZE) this.#resolved.clear();
      this.#resolved.set(key, locale);
    }
    return locale;
  }

  /**
   * Renders one message. Throws a permanent TemplateError (FW_TEMPLATE_RENDER) for an unknown
   * kind or channel, data that breaks the kind's schema (naming the data path), or a template
   * that fails; it never returns a partial message.
   */
  render<K extends TemplateKind>(request: RenderRequest<K>): RenderedMessage {
    const { kind, channel } = request as { kind: string; channel: string };
    if (!isTemplateKind(kind)) {
      throw new TemplateError(
        'FW_TEMPLATE_RENDER',
        `unknown template kind "${kind}": expected one of ${Object.keys(templateKinds).join(', ')}`,
      );
    }
    const channels: readonly string[] = templateKinds[kind].channels;
    if (!channels.includes(channel)) {
      throw new TemplateError(
        'FW_TEMPLATE_RENDER',
        `${kind} has no "${channel}" templates: expected one of ${channels.join(', ')}`,
      );
    }
    const locale = this.resolveLocale(kind, channel as TemplateChannel, request.locale);
    const shapes = this.#shapes.get(keyOf(kind, channel as TemplateChannel, locale));
    if (!shapes) {
      // Cannot happen with a directory that passed the checks in load(); said plainly if it does.
      throw new TemplateError(
        'FW_TEMPLATE_RENDER',
        `${kind} (${locale}, ${channel}): no template in ${this.dir}`,
      );
    }
    const data = validateTemplateData(kind, request.data, `${kind} (${locale}, ${channel})`);
    return shapes.render(data as Record<string, unknown>);
  }
}

const RESOLVED_LOCALES_SIZE = 1_000;

/** `kind/channel/locale`, or `kind/channel` for what holds for every locale. */
function keyOf(kind: TemplateKind, channel: TemplateChannel, locale?: string): string {
  return locale === undefined ? `${kind}/${channel}` : `${kind}/${channel}/${locale}`;
}
