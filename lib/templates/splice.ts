// Which variables of a parsed Liquid template can be *spliced*: rendered as a placeholder and
// their value put in afterwards (shapes.ts does that for whole messages), and which it reads at
// all (every other one is part of the cache key).
//
// The walk below reads liquidjs' parsed templates and tokens directly, so it holds for the one
// version it was checked against (VERIFIED_LIQUIDJS), pinned in package.json; with any other
// version installed it says "unsupported" and every message is rendered in full. It knows every
// node the engine (engine.ts) can produce, and treats anything else as unsupported too: literal
// text, outputs, if/elsif/else, unless, case/when, for (with else, limit, offset, reversed),
// break, continue, assign and comments.
//
// - `reads`: every top-level name that any expression could look up, wherever it stands (an
//   output, a condition, a filter argument, a loop's collection or modifiers, a range, an index,
//   the base of a property access), whether or not an assign or a loop binds that name there: an
//   `{% assign %}` inside an `{% if %}` that is not taken leaves the data's value in place, so the
//   name is read. A lookup by a computed name (`{{ [key] }}`) and the filters that evaluate an
//   expression string in the render's scope (`where_exp`...) could read any name: unsupported.
// - `spliceable`: the names that every use prints as they are (`{{ name }}`, no filter) or tests
//   bare (`{% if name %}`, `{% elsif name %}`, `{% unless name %}`), and that nothing binds
//   (assign, a loop variable). Then the output depends on a non-empty string value only through
//   its text at those places, as it would on a placeholder's. liquidjs' own static analysis must
//   agree (a second opinion: either one seeing another use is enough).
import { createRequire } from 'node:module';
import {
  AssignTag,
  BreakTag,
  CaseTag,
  CommentTag,
  ContinueTag,
  ForTag,
  IfTag,
  InlineCommentTag,
  Liquid,
  Output,
  TypeGuards,
  UnlessTag,
  type Template,
  type Value,
} from 'liquidjs';
import { markValue } from './html.ts';

/**
 * Filters that evaluate a Liquid expression given as a string (`where_exp: "x", "x == name"`) in
 * the render's own scope: it may read any name, and the string may be a variable.
 */
export const SCOPE_FILTERS: ReadonlySet<string> = new Set([
  'where_exp',
  'reject_exp',
  'group_by_exp',
  'find_exp',
  'find_index_exp',
  'has_exp',
]);

/** The liquidjs version whose templates and tokens this walk was checked against. */
export const VERIFIED_LIQUIDJS = '10.30.1';

/** The liquidjs version installed (from its package.json, which its exports leave reachable). */
export const installedLiquidjs: string = (
  createRequire(import.meta.url)('liquidjs/package.json') as { version: string }
).version;

export interface VariableUses {
  /** Every top-level name that `parsed` may look up (more is harmless, less never happens). */
  reads: readonly string[];
  /** Those of them that it only prints plainly or tests bare, and never binds. */
  spliceable: ReadonlySet<string>;
  /** Why the template cannot be analysed (then nothing may be cached by `reads`), or null. */
  unsupported: string | null;
}

/** What `parsed` reads, and which of it may be spliced. `installed`: for tests. */
export function analyseVariables(
  liquid: Liquid,
  parsed: Template[],
  installed: string = installedLiquidjs,
): VariableUses {
  if (installed !== VERIFIED_LIQUIDJS) {
    return unsupported(
      `liquidjs ${installed} is installed; the analysis was verified against ${VERIFIED_LIQUIDJS}`,
    );
  }
  // Splicing reproduces two output modes: values as they are, and html.ts' escaping.
  const escape = liquid.options.outputEscape;
  if (escape !== undefined && escape !== markValue) return unsupported('an output escape other than html.ts');
  const walk = new Walk(escape !== undefined);
  try {
    walk.templates(parsed);
  } catch (error) {
    if (error instanceof Unsupported) return unsupported(error.message);
    throw error;
  }
  // liquidjs' own analysis, as a second opinion on what is read and how.
  const analysis = liquid.analyzeSync(parsed, { partials: false });
  const reads = new Set([...walk.reads.keys(), ...Object.keys(analysis.variables)]);
  const spliceable = [...reads].filter((name) => {
    const uses = walk.reads.get(name) ?? 0;
    const theirs = analysis.variables[name]?.length ?? 0;
    return (
      !walk.bound.has(name) &&
      walk.plain.get(name) === uses &&
      theirs === uses &&
      analysis.globals[name]?.length === uses &&
      !(name in analysis.locals)
    );
  });
  return { reads: [...reads].sort(), spliceable: new Set(spliceable), unsupported: null };
}

function unsupported(reason: string): VariableUses {
  return { reads: [], spliceable: new Set(), unsupported: reason };
}

class Unsupported extends Error {}

/** Fields liquidjs declares private; the walk reads them (hence the pinned version). */
interface FilterInternals {
  handler: unknown;
}
interface AssignInternals {
  key: string;
  value: Value;
}

/** One pass over a template: names read (with how often), read plainly, and bound. */
class Walk {
  readonly reads = new Map<string, number>();
  readonly plain = new Map<string, number>();
  readonly bound = new Set<string>();
  /** Whether outputs end with the engine's escape filter (the HTML engine appends markValue). */
  readonly #escaped: boolean;

  constructor(escaped: boolean) {
    this.#escaped = escaped;
  }

  templates(templates: readonly Template[]): void {
    for (const template of templates) this.template(template);
  }

  template(template: Template): void {
    // Literal text: the parser's own class for it (liquidjs does not export it by name).
    if (template.constructor === HTML_CLASS) return;
    if (template instanceof Output) {
      const filters = template.value.filters;
      const own = this.#escaped ? filters.slice(0, -1) : filters;
      if (
        this.#escaped &&
        (filters.at(-1) as unknown as FilterInternals | undefined)?.handler !== markValue
      ) {
        throw new Unsupported('an output that is not escaped by html.ts');
      }
      this.value(template.value, own.length === 0);
      return;
    }
    if (template instanceof IfTag || template instanceof UnlessTag) {
      for (const branch of template.branches) {
        this.value(branch.value, branch.value.filters.length === 0);
        this.templates(branch.templates);
      }
      this.templates(template.elseTemplates ?? []);
      return;
    }
    if (template instanceof CaseTag) {
      this.value(template.value, false);
      for (const branch of template.branches) {
        for (const token of branch.values) this.token(token);
        this.templates(branch.templates);
      }
      this.templates(template.elseTemplates);
      return;
    }
    if (template instanceof ForTag) {
      this.token(template.collection);
      for (const value of Object.values(template.hash.hash)) {
        if (value !== undefined) this.token(value);
      }
      this.bound.add(template.variable);
      this.bound.add('forloop');
      this.templates(template.templates);
      this.templates(template.elseTemplates);
      return;
    }
    if (template instanceof AssignTag) {
      const assign = template as unknown as AssignInternals;
      this.value(assign.value, false);
      this.bound.add(assign.key);
      return;
    }
    if (
      template instanceof CommentTag ||
      template instanceof InlineCommentTag ||
      template instanceof BreakTag ||
      template instanceof ContinueTag
    ) {
      return;
    }
    throw new Unsupported(`a ${template.constructor.name} the analysis does not know`);
  }

  /** A value with its filters; `plainUse`: a bare name there counts as a plain use. */
  value(value: Value, plainUse: boolean): void {
    const postfix = value.initial.postfix;
    const only = postfix.length === 1 ? postfix[0] : undefined;
    if (plainUse && only) {
      const name = bareName(only);
      if (name !== null) this.plain.set(name, (this.plain.get(name) ?? 0) + 1);
    }
    for (const token of postfix) {
      if (!TypeGuards.isOperatorToken(token)) this.token(token);
    }
    for (const filter of value.filters) {
      if (SCOPE_FILTERS.has(filter.name)) {
        throw new Unsupported(`the ${filter.name} filter, which may read any variable`);
      }
      for (const arg of filter.args) {
        if (Array.isArray(arg)) {
          if (arg[1] !== undefined) this.token(arg[1]);
        } else {
          this.token(arg);
        }
      }
    }
  }

  /** A value token: records the names it may look up. */
  token(token: unknown): void {
    if (
      TypeGuards.isQuotedToken(token) ||
      TypeGuards.isNumberToken(token) ||
      TypeGuards.isLiteralToken(token)
    ) {
      return;
    }
    if (TypeGuards.isRangeToken(token)) {
      this.token(token.lhs);
      this.token(token.rhs);
      return;
    }
    if (TypeGuards.isPropertyAccessToken(token)) {
      const props = token.props;
      if (token.variable !== undefined) {
        // A property of a literal, a range or a group: `"abc".size`, `(1..n).last`.
        this.token(token.variable);
      } else {
        const root = props[0];
        if (TypeGuards.isWordToken(root) || TypeGuards.isQuotedToken(root)) {
          this.read(String(root.content));
        } else {
          throw new Unsupported('a variable looked up by a computed name');
        }
      }
      // Properties after the root: names are static, an index (`list[i]`) is a value.
      for (const prop of token.variable === undefined ? props.slice(1) : props) {
        if (TypeGuards.isWordToken(prop)) continue;
        this.token(prop);
      }
      return;
    }
    throw new Unsupported('an expression the analysis does not know');
  }

  read(name: string): void {
    this.reads.set(name, (this.reads.get(name) ?? 0) + 1);
  }
}

/** `name` when the token is nothing but one top-level variable, else null. */
function bareName(token: unknown): string | null {
  if (!TypeGuards.isPropertyAccessToken(token) || token.variable !== undefined || token.props.length !== 1) {
    return null;
  }
  const root = token.props[0];
  return TypeGuards.isWordToken(root) ? root.content : null;
}

const HTML_CLASS = new Liquid().parse('text')[0]!.constructor;
