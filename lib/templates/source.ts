// Reading a templates directory: which files exist and whether they should, each file's front
// matter and Liquid, and whether every variable a template uses is declared by its kind. Both
// the store and the linter start here; every problem names the file and the line.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Liquid, Template, Variable } from 'liquidjs';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  requiredLocales,
  templateChannels,
  templateKindNames,
  templateKinds,
  isTemplateKind,
  type TemplateChannel,
  type TemplateKind,
} from '../../templates/kinds.ts';
import { createEngine, liquidErrorAt, parse } from './engine.ts';
import type { TemplateProblem } from './errors.ts';
import { canonicalLocale } from './locale.ts';

export const LAYOUT_FILE = '_layout.html';
/** Variables the layout may use. */
export const LAYOUT_VARIABLES = ['content', 'subject', 'locale'] as const;
/** Files beside the kind folders that are not templates. */
const KNOWN_FILES = new Set(['kinds.ts', 'README.md', LAYOUT_FILE]);
const FILE_NAME = /^([^.]+)\.([^.]+)\.liquid$/;

/** The front matter key each channel requires: the one line a reader sees first. */
export const headerKeys: Record<TemplateChannel, 'subject' | 'title'> = { email: 'subject', inapp: 'title' };

export interface CompiledTemplate {
  kind: TemplateKind;
  locale: string;
  channel: TemplateChannel;
  file: string;
  header: { key: 'subject' | 'title'; line: number; template: Template[] };
  /** `line`: the file's line where the body starts. `html`: email only. */
  body: { line: number; text: Template[]; html: Template[] | null };
}

export interface CompiledLayout {
  file: string;
  template: Template[];
}

export interface TemplateSet {
  dir: string;
  templates: CompiledTemplate[];
  layout: CompiledLayout | null;
  problems: TemplateProblem[];
}

export interface Engines {
  text: Liquid;
  html: Liquid;
}

export function createEngines(): Engines {
  return { text: createEngine('text'), html: createEngine('html') };
}

/**
 * `overrides`: file path to text read instead of the file's content (the template studio lints
 * and previews an author's unsaved edit with the real checks, writing nothing).
 */
export async function readTemplateSet(
  dir: string,
  engines: Engines,
  overrides: ReadonlyMap<string, string> = new Map(),
): Promise<TemplateSet> {
  const problems: TemplateProblem[] = [];
  const templates: CompiledTemplate[] = [];
  let layout: CompiledLayout | null = null;

  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    problems.push({ file: dir, line: 1, message: `cannot read the templates directory: ${describe(error)}` });
    return { dir, templates, layout, problems };
  }

  const present = new Set<string>();
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!isTemplateKind(entry.name)) {
        problems.push({
          file: path,
          line: 1,
          message: `unknown kind "${entry.name}": a folder must be named after a kind declared in templates/kinds.ts (${templateKindNames.join(', ')})`,
        });
        continue;
      }
      await readKindFolder(entry.name, path, engines, templates, problems, present, overrides);
    } else if (entry.name === LAYOUT_FILE) {
      layout = await readLayout(path, engines, problems);
    } else if (!KNOWN_FILES.has(entry.name)) {
      problems.push({
        file: path,
        line: 1,
        message: `stray file: the templates directory holds only kind folders, ${[...KNOWN_FILES].join(', ')}`,
      });
    }
  }

  if (!entries.some((e) => e.name === LAYOUT_FILE)) {
    problems.push({
      file: join(dir, LAYOUT_FILE),
      line: 1,
      message: 'missing: the HTML layout of every email (with {{ content }} where the message goes)',
    });
  }
  for (const kind of templateKindNames) {
    for (const channel of templateKinds[kind].channels) {
      for (const locale of requiredLocales) {
        const name = `${locale}.${channel}.liquid`;
        if (!present.has(`${kind}/${name}`)) {
          problems.push({
            file: join(dir, kind, name),
            line: 1,
            message: `missing: every kind needs ${requiredLocales.join(' and ')} for each of its channels (${kind}: ${templateKinds[kind].channels.join(', ')})`,
          });
        }
      }
    }
  }
  return { dir, templates, layout, problems };
}

async function readKindFolder(
  kind: TemplateKind,
  folder: string,
  engines: Engines,
  templates: CompiledTemplate[],
  problems: TemplateProblem[],
  present: Set<string>,
  overrides: ReadonlyMap<string, string>,
): Promise<void> {
  const channels: readonly TemplateChannel[] = templateKinds[kind].channels;
  const entries = await readdir(folder, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const file = join(folder, entry.name);
    const match = FILE_NAME.exec(entry.name);
    if (!entry.isFile() || !match) {
      problems.push({
        file,
        line: 1,
        message: `stray ${entry.isFile() ? 'file' : 'folder'}: a kind folder holds only <locale>.<channel>.liquid files, e.g. zh-CN.email.liquid`,
      });
      continue;
    }
    const [, locale = '', channel = ''] = match;
    const canonical = canonicalLocale(locale);
    if (canonical !== locale) {
      problems.push({
        file,
        line: 1,
        message: canonical
          ? `locale "${locale}" in the file name: write it as "${canonical}"`
          : `"${locale}" in the file name is not a language tag (e.g. zh-CN, en, zh-TW)`,
      });
      continue;
    }
    if (!(channels as readonly string[]).includes(channel)) {
      const known = (templateChannels as readonly string[]).includes(channel);
      problems.push({
        file,
        line: 1,
        message: known
          ? `${kind} is not sent by ${channel}: its channels are ${channels.join(', ')} (templates/kinds.ts)`
          : `unknown channel "${channel}" in the file name: ${kind}'s channels are ${channels.join(', ')}`,
      });
      continue;
    }
    present.add(`${kind}/${entry.name}`);
    const compiled = await readTemplateFile(
      { kind, locale, channel: channel as TemplateChannel, file },
      engines,
      problems,
      overrides.get(file),
    );
    if (compiled) templates.push(compiled);
  }
}

async function readTemplateFile(
  where: { kind: TemplateKind; locale: string; channel: TemplateChannel; file: string },
  engines: Engines,
  problems: TemplateProblem[],
  override: string | undefined,
): Promise<CompiledTemplate | null> {
  const { kind, channel, file } = where;
  const text = (override ?? (await readFile(file, 'utf8'))).replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const before = problems.length;
  const report = (line: number, message: string): void => {
    problems.push({ file, line, message });
  };

  const front = splitFrontMatter(text);
  if ('error' in front) {
    report(front.line, front.error);
    return null;
  }
  const key = headerKeys[channel];
  const header = readHeader(front.header, key, report);

  const schema = templateKinds[kind].schema;
  let headerTemplate: Template[] | null = null;
  if (header) {
    headerTemplate = compile(engines.text, header.value, header.line, report);
    if (headerTemplate) checkVariables(engines.text, headerTemplate, schema, kind, header.line, report);
  }
  const body = front.body;
  const bodyText = compile(engines.text, body, front.bodyLine, report);
  if (bodyText) checkVariables(engines.text, bodyText, schema, kind, front.bodyLine, report);
  if (body.trim() === '') report(front.bodyLine, 'the message body is empty');
  // The HTML engine parses the same text; it cannot fail where the text engine did not.
  const bodyHtml = channel === 'email' && bodyText ? parse(engines.html, body) : null;

  if (problems.length > before || !header || !headerTemplate || !bodyText) return null;
  return {
    ...where,
    header: { key, line: header.line, template: headerTemplate },
    body: { line: front.bodyLine, text: bodyText, html: bodyHtml },
  };
}

type Report = (line: number, message: string) => void;

function splitFrontMatter(
  text: string,
): { header: string; body: string; bodyLine: number } | { error: string; line: number } {
  const lines = text.split('\n');
  if (lines[0]?.trim() !== '---') {
    return {
      line: 1,
      error:
        'expected front matter: a first line "---", then e.g. "subject: ..." or "title: ...", then "---"',
    };
  }
  const close = lines.findIndex((line, i) => i > 0 && line.trim() === '---');
  if (close < 0)
    return { line: 1, error: 'the front matter opened on line 1 is never closed by a "---" line' };
  return {
    header: lines.slice(1, close).join('\n'),
    body: lines.slice(close + 1).join('\n'),
    bodyLine: close + 2,
  };
}

/** The front matter's one key, with its value and line; reports anything else. */
function readHeader(
  text: string,
  key: 'subject' | 'title',
  report: Report,
): { value: string; line: number } | null {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  // The front matter starts on the file's line 2.
  const lineAt = (offset: number | undefined): number =>
    offset === undefined ? 1 : counter.linePos(offset).line + 1;
  if (doc.errors.length > 0) {
    const unquoted = text.split('\n').some((line) => /^\s*\w+:\s*[{[%]/.test(line));
    const hint = unquoted
      ? `; put a value that starts with {{ or {% in double quotes: ${key}: "{{ ... }}"`
      : '';
    for (const error of doc.errors) {
      report(lineAt(error.pos[0]), `front matter is not valid YAML: ${error.message.split('\n')[0]!}${hint}`);
    }
    return null;
  }
  const contents = doc.contents;
  if (!isMap(contents)) {
    report(contents ? lineAt(contents.range?.[0]) : 1, `front matter must hold "${key}: ..."`);
    return null;
  }
  let found: { value: string; line: number } | null = null;
  for (const pair of contents.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const line = lineAt(isScalar(pair.key) ? pair.key.range?.[0] : undefined);
    if (name !== key) {
      report(line, `unknown front matter key "${name}": this channel's templates have only "${key}"`);
      continue;
    }
    if (!isScalar(pair.value) || typeof pair.value.value !== 'string' || pair.value.value.trim() === '') {
      report(
        line,
        `${key}: expected one line of text (quote it when it starts with {{ or holds ": ", e.g. ${key}: "{{ channelName }} ...")`,
      );
      continue;
    }
    found = { value: pair.value.value, line };
  }
  if (!found && !contents.items.some((p) => isScalar(p.key) && p.key.value === key)) {
    report(
      1,
      `missing "${key}:" in the front matter (every ${key === 'subject' ? 'email' : 'in-app'} template has one)`,
    );
  }
  return found;
}

/** Parses `source`, which starts on the file's line `firstLine`; reports a syntax error. */
function compile(liquid: Liquid, source: string, firstLine: number, report: Report): Template[] | null {
  try {
    return parse(liquid, source);
  } catch (error) {
    const at = liquidErrorAt(error);
    if (!at) throw error;
    report(firstLine + at.line - 1, at.message);
    return null;
  }
}

export function checkVariables(
  liquid: Liquid,
  template: Template[],
  schema: z.ZodType,
  owner: string,
  firstLine: number,
  report: Report,
): void {
  const { globals } = liquid.analyzeSync(template, { partials: false });
  for (const uses of Object.values(globals)) {
    for (const variable of uses) {
      const problem = pathProblem(schema, variable.segments, owner);
      if (problem) report(firstLine + variable.location.row - 1, `{{ ${variable.toString()} }}: ${problem}`);
    }
  }
}

interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
}

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { def: SchemaDef }).def;
}

/** Why `segments` is not a path through `schema`, or null when it is. */
function pathProblem(
  schema: z.ZodType,
  segments: ReadonlyArray<string | number | Variable>,
  owner: string,
): string | null {
  let current = schema;
  let where = owner;
  for (const segment of segments) {
    let def = defOf(current);
    while (
      def.innerType &&
      ['nullable', 'optional', 'default', 'readonly', 'nonoptional'].includes(def.type)
    ) {
      current = def.innerType;
      def = defOf(current);
    }
    // A computed index (`list[i]`): its own variable is checked on its own; the rest cannot be.
    if (typeof segment === 'object') return null;
    if (def.type === 'object' && def.shape) {
      const next =
        typeof segment === 'string' && Object.hasOwn(def.shape, segment) ? def.shape[segment] : undefined;
      if (!next) {
        const declared = Object.keys(def.shape).join(', ');
        return where === owner
          ? `"${segment}" is not a variable of ${owner}; declared in templates/kinds.ts: ${declared}`
          : `${where} has no "${segment}"; it has: ${declared}`;
      }
      current = next;
    } else if (def.type === 'array' && def.element) {
      if (segment === 'size') return null;
      if (typeof segment !== 'number' && segment !== 'first' && segment !== 'last') {
        return `${where} is a list: use .size, .first, .last or [index], not .${segment}`;
      }
      current = def.element;
    } else if (def.type === 'string' && segment === 'size') {
      return null;
    } else {
      return `${where} is a ${def.type === 'enum' ? 'word' : def.type}, it has no "${String(segment)}"`;
    }
    where = where === owner ? String(segment) : `${where}.${String(segment)}`;
  }
  return null;
}

async function readLayout(
  file: string,
  engines: Engines,
  problems: TemplateProblem[],
): Promise<CompiledLayout | null> {
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  const before = problems.length;
  const report: Report = (line, message) => problems.push({ file, line, message });
  const template = compile(engines.text, text, 1, report);
  if (!template) return null;
  const { globals } = engines.text.analyzeSync(template, { partials: false });
  for (const [name, uses] of Object.entries(globals)) {
    if (!(LAYOUT_VARIABLES as readonly string[]).includes(name)) {
      for (const use of uses) {
        report(
          use.location.row,
          `{{ ${use.toString()} }}: the layout has only ${LAYOUT_VARIABLES.join(', ')}`,
        );
      }
    }
  }
  if (!globals.content) report(1, 'the layout never writes {{ content }}, so every email would be empty');
  return problems.length > before ? null : { file, template };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
