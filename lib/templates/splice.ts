// Rendering a parsed Liquid template once per *shape* of its data, then splicing per-recipient
// strings into the result. A fan-out sends one message to thousands of users that differ only in
// a value or two (a signed settings link, a name); running Liquid for each of them is most of the
// cost of an email. A top-level variable can be spliced when the template only ever prints it as
// it is (`{{ name }}`, no filters) or tests it bare (`{% if name %}`, `{% elsif name %}`,
// `{% unless name %}`): then the output depends on the value only through its truthiness and its
// text at those places, so rendering once with an unguessable placeholder and putting the value
// where the placeholder came out gives exactly what rendering with the value would. Any other use
// (a filter, a comparison, a loop, an `assign`) keeps the variable's value in the cache key.
import { randomBytes } from 'node:crypto';
import { IfTag, Output, TypeGuards, UnlessTag, type Liquid, type Template, type Value } from 'liquidjs';
import { markedText, markValue } from './html.ts';

/** Distinct renders kept per template; a fan-out needs one or two. */
const MAX_SHAPES = 256;

/** Placeholders carry a per-process nonce, so no data can contain one by chance or design. */
const NONCE = randomBytes(9).toString('hex');
const PLACEHOLDER = new RegExp(`\u{E002}${NONCE}(\\d+)\u{E003}`, 'gu');
const placeholder = (slot: number) => `\u{E002}${NONCE}${slot}\u{E003}`;

interface Shape {
  /** Literal output around the slots: `pieces.length === slots.length + 1`. */
  pieces: string[];
  /** Which spliced variable goes after `pieces[i]`. */
  slots: number[];
}

class SplicingTemplate {
  readonly #liquid: Liquid;
  readonly #parsed: Template[];
  readonly #html: boolean;
  /** Every top-level variable the template reads, sorted: its output depends on nothing else. */
  readonly #reads: readonly string[];
  /** The subset that is only printed plainly or tested bare. */
  readonly #spliceable: ReadonlySet<string>;
  readonly #shapes = new Map<string, Shape>();

  constructor(liquid: Liquid, parsed: Template[]) {
    this.#liquid = liquid;
    this.#parsed = parsed;
    // Splicing reproduces two output modes: values as they are, and html.ts' escaping.
    const escape = liquid.options.outputEscape;
    this.#html = escape === markValue;
    const analysis = liquid.analyzeSync(parsed, { partials: false });
    this.#reads = Object.keys(analysis.globals).sort();
    const plainUses = countPlainUses(parsed, liquid);
    this.#spliceable = new Set(
      this.#reads.filter((name) => {
        const uses = analysis.variables[name]?.length ?? 0;
        // Every reference must be to the global (never shadowed by a loop or an assign) and plain.
        return (
          (escape === undefined || this.#html) &&
          uses === analysis.globals[name]?.length &&
          !(name in analysis.locals) &&
          plainUses.get(name) === uses
        );
      }),
    );
  }

  /** The names whose string values are spliced rather than rendered; for tests and tooling. */
  get spliceable(): ReadonlySet<string> {
    return this.#spliceable;
  }

  render(scope: Record<string, unknown>): string {
    const spliced: string[] = [];
    const keyParts: unknown[] = [];
    const renderScope: Record<string, unknown> = { ...scope };
    for (const name of this.#reads) {
      const value = scope[name];
      // A non-empty string is truthy under every Liquid truthiness rule, as the placeholder is.
      if (this.#spliceable.has(name) && typeof value === 'string' && value !== '') {
        renderScope[name] = placeholder(spliced.length);
        spliced.push(value);
        keyParts.push(0); // "a spliced string": values are wrapped in arrays, so 0 is no value
      } else {
        // Missing and null differ under strict variables (an error, and nothing printed).
        keyParts.push(value === undefined ? 1 : [value]);
      }
    }
    if (spliced.length === 0) return String(this.#liquid.renderSync(this.#parsed, scope));
    const key = JSON.stringify(keyParts);
    let shape = this.#shapes.get(key);
    if (!shape) {
      shape = split(String(this.#liquid.renderSync(this.#parsed, renderScope)));
      if (this.#shapes.size >= MAX_SHAPES) this.#shapes.delete(this.#shapes.keys().next().value!);
      this.#shapes.set(key, shape);
    }
    const out: string[] = [shape.pieces[0]!];
    for (let i = 0; i < shape.slots.length; i++) {
      const value = spliced[shape.slots[i]!]!;
      // What the engine would have written for the value itself: as it is, or escaped and marked.
      out.push(this.#html ? markedText(value) : value, shape.pieces[i + 1]!);
    }
    // join() makes one flat string; `+=` would make a rope, which every later character scan
    // (nodemailer reads each part's text to choose its transfer encoding) walks slowly.
    return out.join('');
  }
}

function split(rendered: string): Shape {
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

/** Per variable name, how many references are a plain `{{ name }}` or a bare condition. */
function countPlainUses(templates: readonly Template[], liquid: Liquid): Map<string, number> {
  const counts = new Map<string, number>();
  const count = (name: string | null) => {
    if (name !== null) counts.set(name, (counts.get(name) ?? 0) + 1);
  };
  const visit = (template: Template) => {
    if (template instanceof Output) {
      // An engine with an output escape appends it to every output as one more filter.
      const appended = liquid.options.outputEscape ? 1 : 0;
      if (template.value.filters.length === appended) count(bareVariable(template.value));
    } else if (template instanceof IfTag || template instanceof UnlessTag) {
      for (const branch of template.branches) {
        if (branch.value.filters.length === 0) count(bareVariable(branch.value));
      }
    }
    const children = (template as { children?: (partials: boolean, sync: boolean) => Generator }).children;
    if (children) {
      // Tags yield their child templates as the generator's return value (liquidjs' analysis API).
      const walk = children.call(template, false, true);
      let step = walk.next();
      while (!step.done) step = walk.next(step.value);
      for (const child of step.value as Template[]) visit(child);
    }
  };
  for (const template of templates) visit(template);
  return counts;
}

/** `name` when the value is nothing but one top-level variable, else null. */
function bareVariable(value: Value): string | null {
  const tokens = value.initial.postfix;
  if (tokens.length !== 1) return null;
  const token = tokens[0]!;
  if (!TypeGuards.isPropertyAccessToken(token) || token.variable !== undefined || token.props.length !== 1) {
    return null;
  }
  const text = token.getText();
  return /^[A-Za-z_][\w-]*$/.test(text) ? text : null;
}

const splicers = new WeakMap<Template[], SplicingTemplate>();

function splicerFor(liquid: Liquid, parsed: Template[]): SplicingTemplate {
  let splicer = splicers.get(parsed);
  if (!splicer) {
    splicer = new SplicingTemplate(liquid, parsed);
    splicers.set(parsed, splicer);
  }
  return splicer;
}

/**
 * `liquid.renderSync(parsed, scope)`, with Liquid run once per shape of the data: see the top of
 * this file. `parsed` must always be rendered with the same engine. Errors are Liquid's own.
 */
export function renderSpliced(liquid: Liquid, parsed: Template[], scope: Record<string, unknown>): string {
  return splicerFor(liquid, parsed).render(scope);
}

/** The variables of `parsed` whose string values are spliced in rather than rendered. */
export function spliceableVariables(liquid: Liquid, parsed: Template[]): ReadonlySet<string> {
  return splicerFor(liquid, parsed).spliceable;
}
