// `forewarn templates lint`: everything that can be wrong with a templates directory before it
// ships. Files and names, front matter, Liquid syntax, variables and filters the kind does not
// declare, the required locales and channels, a render of every template with the kind's
// sample data and each of its variants, and (both-ways.ts) the same message from the fast path
// and from a full render for hostile and borderline values.
import { readFileSync } from 'node:fs';
import { templateKinds } from '../../templates/kinds.ts';
import { fromPackageRoot } from '../package-root.ts';
import { compareBothWays } from './both-ways.ts';
import { validateTemplateData } from './data.ts';
import { TemplateError, type TemplateProblem } from './errors.ts';
import { renderCompiled } from './render.ts';
import { createEngines, readTemplateSet, type Engines, type TemplateSet } from './source.ts';

const KINDS_FILE = fromPackageRoot('templates', 'kinds.ts');

export interface InspectOptions {
  /**
   * Render every template both ways with hostile values (both-ways.ts). On by default, as the
   * linter runs; loading the store skips it (a second or so that the analysis makes needless).
   * `{ only: path }`: that file alone (the studio saving one file: the others did not change).
   */
  bothWays?: boolean | { only: string };
  /** File path to text checked instead of the file (the studio's unsaved edits); nothing is written. */
  overrides?: ReadonlyMap<string, string>;
}

/** Every problem in the templates in `dir`, in file order; empty when they may ship. */
export async function lintTemplates(dir: string, options: InspectOptions = {}): Promise<TemplateProblem[]> {
  return (await inspectTemplates(dir, options)).set.problems;
}

/** Reads `dir` and renders every template that compiled with each sample; adds what fails. */
export async function inspectTemplates(
  dir: string,
  options: InspectOptions = {},
): Promise<{ set: TemplateSet; engines: Engines }> {
  const engines = createEngines();
  const set = await readTemplateSet(dir, engines, options.overrides);
  const problems = set.problems;
  for (const template of set.templates) {
    const before = problems.length;
    const definition = templateKinds[template.kind];
    const samples: [string, unknown][] = [
      ['sample', definition.sample],
      ...Object.entries(definition.variants ?? {}),
    ];
    for (const [name, sample] of samples) {
      try {
        const data = validateTemplateData(template.kind, sample, `${template.kind} ${name} data`);
        renderCompiled(engines, template, set.layout, data);
      } catch (error) {
        if (!(error instanceof TemplateError)) throw error;
        if (error.problems.length === 0) {
          // The sample itself breaks the schema: a mistake in kinds.ts, not in the template.
          problems.push({ file: KINDS_FILE, line: 1, message: error.message });
        }
        for (const problem of error.problems) {
          problems.push({ ...problem, message: `${problem.message} (rendering the ${name} data)` });
        }
        break;
      }
    }
    const bothWays =
      typeof options.bothWays === 'object'
        ? options.bothWays.only === template.file
        : options.bothWays !== false;
    if (bothWays && problems.length === before) {
      problems.push(...compareBothWays(engines, template, set.layout));
    }
  }
  problems.push(...variableNoteProblems(templateKinds));
  // A broken layout or sample fails every render the same way: say it once.
  const seen = new Set<string>();
  set.problems = problems
    .filter((p) => {
      const key = `${p.file}:${p.line}:${p.message}`;
      return !seen.has(key) && seen.add(key);
    })
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  return { set, engines };
}

interface NotedKind {
  schema: unknown;
  variables: Readonly<Record<string, string>>;
}

/**
 * Every variable of every kind needs a note in plain words (what the template studio shows the
 * people who write templates), and a note must be about a variable that exists.
 */
export function variableNoteProblems(kinds: Readonly<Record<string, NotedKind>>): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  let lines: string[] = [];
  try {
    lines = readFileSync(KINDS_FILE, 'utf8').split('\n');
  } catch {
    // The line numbers are a help only.
  }
  for (const [kind, definition] of Object.entries(kinds)) {
    const found = lines.findIndex((line) => line.includes(`'${kind}': defineKind(`));
    const line = found >= 0 ? found + 1 : 1;
    const shape = (definition.schema as { def?: { shape?: Record<string, unknown> } }).def?.shape ?? {};
    for (const name of Object.keys(shape)) {
      const note = definition.variables[name];
      if (typeof note !== 'string' || note.trim() === '') {
        problems.push({
          file: KINDS_FILE,
          line,
          message: `${kind}: variable "${name}" has no note in variables: say in plain words what it holds`,
        });
      }
    }
    for (const name of Object.keys(definition.variables)) {
      if (!Object.hasOwn(shape, name)) {
        problems.push({
          file: KINDS_FILE,
          line,
          message: `${kind}: variables has a note for "${name}", which is not a variable of the kind (its schema has ${Object.keys(shape).join(', ')})`,
        });
      }
    }
  }
  return problems;
}
