// Which variables of a parsed Liquid template can be *spliced*: rendered as a placeholder and
// their value put in afterwards (shapes.ts does that for whole messages). A top-level variable
// qualifies when the template only ever prints it as it is (`{{ name }}`, no filters) or tests it
// bare (`{% if name %}`, `{% elsif name %}`, `{% unless name %}`): then the output depends on a
// non-empty string value only through its text at those places, as it would on a placeholder's.
// Any other use (a filter, a comparison, a loop, an `assign`) makes the value matter as a whole.
import { IfTag, Output, TypeGuards, UnlessTag, type Liquid, type Template, type Value } from 'liquidjs';
import { markValue } from './html.ts';

export interface VariableUses {
  /** Every top-level variable that `parsed` reads. */
  reads: readonly string[];
  /** Those of them that it only prints plainly or tests bare. */
  spliceable: ReadonlySet<string>;
}

/** What `parsed` reads, and which of it may be spliced. */
export function analyseVariables(liquid: Liquid, parsed: Template[]): VariableUses {
  const analysis = liquid.analyzeSync(parsed, { partials: false });
  const reads = Object.keys(analysis.globals);
  // Splicing reproduces two output modes: values as they are, and html.ts' escaping.
  const escape = liquid.options.outputEscape;
  if (escape !== undefined && escape !== markValue) return { reads, spliceable: new Set() };
  const plainUses = countPlainUses(parsed, liquid);
  const spliceable = reads.filter((name) => {
    const uses = analysis.variables[name]?.length ?? 0;
    // Every reference must be to the global (never shadowed by a loop or an assign) and plain.
    return (
      uses === analysis.globals[name]?.length && !(name in analysis.locals) && plainUses.get(name) === uses
    );
  });
  return { reads, spliceable: new Set(spliceable) };
}

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
