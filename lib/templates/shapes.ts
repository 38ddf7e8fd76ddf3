// Rendering whole messages once per *shape* of their data. The messages of a fan-out differ only
// in a per-user value or two (a signed settings link, a pay link); so `renderCompiled` (Liquid,
// then the text and HTML post-processing of html.ts) runs once with a placeholder for each such
// value, and each message is that result with its values put in: as they are in the subject, title
// and text, escaped in the HTML part (subject and body alike).
//
// That is exact only for values the whole chain treats as opaque text. A value is spliced when:
// - every part of the template only prints it plainly or tests it bare (splice.ts decides), and
//   so does the email layout with the subject and content it wraps;
// - it is a non-empty string (truthy, as its placeholder is) with no white space, which the
//   post-processing collapses or trims or splits lines and paragraphs on, and none of the
//   private-use markers that html.ts and this file use;
// - it cannot change whether a line of the HTML part becomes a link. html.ts links a line that
//   starts with "http://" or "https://", has more after it, and has no white space. Neither value
//   nor placeholder has white space or is empty, so only the line's first 8 characters decide. A
//   value whose first character occurs in neither prefix fails or passes that test exactly where
//   its placeholder does. A value that starts with one of those characters keeps its first 8
//   characters in front of its placeholder and in the cache key, so the test sees the same
//   characters, and the rest (never empty: a value of 8 characters or fewer is not spliced) goes
//   where the placeholder was.
// Any other value is part of the cache key, so its message is rendered in full.
//
// The key holds every other value the template may read (splice.ts over-approximates that), as
// JSON. A value whose JSON another value shares (NaN and null, undefined and null in a list, a
// Date and its ISO text, a class instance; -0 and 0, to be safe) gets its message rendered in
// full. So does every message of a template the analysis does not
// fully understand (see splice.ts), and a render that read the clock (`"now" | date`) or chance
// (`sample`) is never cached (engine.ts counts those reads).
import { randomBytes } from 'node:crypto';
import { impureReadCount } from './engine.ts';
import { escapeHtml } from './html.ts';
import { renderCompiled, type RenderedMessage } from './render.ts';
import type { CompiledLayout, CompiledTemplate, Engines } from './source.ts';
import { analyseVariables } from './splice.ts';

/** Distinct shapes kept per template; a fan-out needs one or two. */
const MAX_SHAPES = 256;

const NONCE = randomBytes(9).toString('hex');
const PLACEHOLDER = new RegExp(`\u{E002}${NONCE}(\\d+)\u{E003}`, 'gu');
const placeholder = (slot: number) => `\u{E002}${NONCE}${slot}\u{E003}`;

/** White space, and the markers of html.ts (E000-E001) and of this file (E002-E003). */
const OPAQUE_BREAKERS = /[\s\u{E000}-\u{E003}]/u;
const URL_PREFIX_CHARS = new Set('https:/');
const URL_PREFIX_LENGTH = 'https://'.length;

interface Part {
  /** Literal text around the slots: `pieces.length === slots.length + 1`. */
  pieces: string[];
  /** Which spliced value goes after `pieces[i]`. */
  slots: number[];
}

interface Shape {
  message: RenderedMessage;
  header: Part;
  text: Part;
  html: Part | null;
}

export class MessageShapes {
  readonly #engines: Engines;
  readonly #template: CompiledTemplate;
  readonly #layout: CompiledLayout | null;
  /** Every top-level variable the template reads, sorted: a message depends on nothing else. */
  readonly #reads: readonly string[];
  /** The variables that every part prints only plainly or tests bare. */
  readonly #spliceable: ReadonlySet<string>;
  /** Why every message is rendered in full (the analysis does not understand the template). */
  readonly #fullRenderReason: string | null = null;
  readonly #shapes = new Map<string, Shape>();

  constructor(engines: Engines, template: CompiledTemplate, layout: CompiledLayout | null) {
    this.#engines = engines;
    this.#template = template;
    this.#layout = layout;
    const parts: Array<[Engines['text'], CompiledTemplate['body']['text']]> = [
      [engines.text, template.header.template],
      [engines.text, template.body.text],
    ];
    if (template.body.html) parts.push([engines.html, template.body.html]);
    const reads = new Set<string>();
    const notSpliceable = new Set<string>();
    for (const [liquid, parsed] of parts) {
      const uses = analyseVariables(liquid, parsed);
      this.#fullRenderReason ??= uses.unsupported;
      for (const name of uses.reads) {
        reads.add(name);
        if (!uses.spliceable.has(name)) notSpliceable.add(name);
      }
    }
    this.#reads = [...reads].sort();
    this.#spliceable = layoutKeepsPlaceholders(engines, template, layout)
      ? new Set(this.#reads.filter((name) => !notSpliceable.has(name)))
      : new Set();
  }

  /** The variables whose values may be spliced in; for tests and tooling. */
  get spliceable(): ReadonlySet<string> {
    return this.#spliceable;
  }

  /** How many shapes are cached; for tests and tooling. */
  get size(): number {
    return this.#shapes.size;
  }

  /** Why every message of this template is rendered in full, or null; for tests and tooling. */
  get fullRenderReason(): string | null {
    return this.#fullRenderReason;
  }

  /** `renderCompiled` for data already validated; errors are its own. */
  render(data: Record<string, unknown>): RenderedMessage {
    if (this.#fullRenderReason !== null) return this.#renderFull(data);
    const keyParts: unknown[] = [];
    const tails: string[] = [];
    let scope: Record<string, unknown> | undefined;
    for (const name of this.#reads) {
      const value = data[name];
      const kept = this.#spliceable.has(name) ? keptPrefix(value) : null;
      if (kept === null) {
        if (value === undefined) {
          keyParts.push(0);
          continue;
        }
        if (!keyable(value)) return this.#renderFull(data);
        // Values are wrapped, so they never look like a kept prefix; missing and null differ.
        keyParts.push([value]);
        continue;
      }
      keyParts.push(kept);
      scope ??= { ...data };
      scope[name] = kept + placeholder(tails.length);
      tails.push((value as string).slice(kept.length));
    }
    const key = JSON.stringify(keyParts);
    let shape = this.#shapes.get(key);
    if (!shape) {
      const impure = impureReadCount();
      shape = toShape(renderCompiled(this.#engines, this.#template, this.#layout, scope ?? data));
      if (impureReadCount() === impure) {
        if (this.#shapes.size >= MAX_SHAPES) this.#shapes.delete(this.#shapes.keys().next().value!);
        this.#shapes.set(key, shape);
      }
    }
    const message: RenderedMessage = { ...shape.message };
    if (tails.length === 0) return message;
    const header = fill(shape.header, tails);
    if (message.subject !== undefined) message.subject = header;
    else message.title = header;
    message.text = fill(shape.text, tails);
    if (shape.html) message.html = fill(shape.html, tails.map(escapeHtml));
    return message;
  }

  #renderFull(data: Record<string, unknown>): RenderedMessage {
    return renderCompiled(this.#engines, this.#template, this.#layout, data);
  }
}

/**
 * Whether JSON writes `value` so that no other value Liquid could tell apart from it is written
 * the same: strings, booleans, null, finite numbers (not -0), and lists and plain objects of
 * them. Not NaN or Infinity (written null), undefined in a list (null) or an object (dropped),
 * a Date (its ISO text), a class instance, a function. Data validated by a kind's schema always
 * is; anything else has its message rendered in full.
 */
function keyable(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return value === 0 ? 1 / value > 0 : Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Array.prototype) {
        // for...of visits holes as undefined.
        for (const item of value as unknown[]) if (!keyable(item)) return false;
        return true;
      }
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (Object.hasOwn(value, key) && !keyable((value as Record<string, unknown>)[key])) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Whether the layout (which wraps an email's HTML part) passes the placeholders in `subject` and
 * `content` through untouched: it prints them plainly or tests them bare, as a template's parts
 * must. A filter (`upcase`, `truncate`) or a comparison there would change or cut them, so a
 * template under such a layout (or one the analysis does not understand) splices nothing: its
 * messages are still cached by shape, but every value is part of the key.
 */
function layoutKeepsPlaceholders(
  engines: Engines,
  template: CompiledTemplate,
  layout: CompiledLayout | null,
): boolean {
  if (!layout || !template.body.html) return true;
  const { reads, spliceable, unsupported } = analyseVariables(engines.text, layout.template);
  // A layout beyond the analysis might do anything with them (`{{ [name] | upcase }}`).
  if (unsupported !== null) return false;
  return ['subject', 'content'].every((name) => !reads.includes(name) || spliceable.has(name));
}

/**
 * What of `value` stays in front of its placeholder (and in the cache key): '' or its first 8
 * characters; null when it cannot be spliced (see the top of this file).
 */
function keptPrefix(value: unknown): string | null {
  if (typeof value !== 'string' || value === '' || OPAQUE_BREAKERS.test(value)) return null;
  if (!URL_PREFIX_CHARS.has(value[0]!)) return '';
  return value.length > URL_PREFIX_LENGTH ? value.slice(0, URL_PREFIX_LENGTH) : null;
}

function toShape(message: RenderedMessage): Shape {
  return {
    message,
    header: split(message.subject ?? message.title ?? ''),
    text: split(message.text),
    html: message.html === undefined ? null : split(message.html),
  };
}

function split(rendered: string): Part {
  const pieces: string[] = [];
  const slots: number[] = [];
  let last = 0;
  for (const match of rendered.matchAll(PLACEHOLDER)) {
    pieces.push(rendered.slice(last, match.index));
    slots.push(Number(match[1]));
    last = match.index + match[0].length;
  }
  pieces.push(rendered.slice(last));
  return { pieces, slots };
}

function fill(part: Part, values: readonly string[]): string {
  if (part.slots.length === 0) return part.pieces[0]!;
  const out: string[] = [part.pieces[0]!];
  for (let i = 0; i < part.slots.length; i++) out.push(values[part.slots[i]!]!, part.pieces[i + 1]!);
  // join() makes one flat string; `+=` would make a rope that later character scans walk slowly.
  return out.join('');
}
