// Reading and validating config/forewarn.yaml. Problems are reported with the key path, the line
// in the file, what was expected and what was found; a valid config comes back frozen.
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, ForewarnError, type ConfigProblem } from '../errors.ts';
import { configKeyOf } from '../detection/detector.ts';
import { registeredDetectors } from '../detection/registry.ts';
import { configSchema, type Config } from './schema.ts';

export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ForewarnError(
      'FW_CONFIG_UNREADABLE',
      `${file}: cannot read the config file: ${describe(error)}`,
      {
        cause: error,
      },
    );
  }
  return parseConfigText(text, file);
}

export function parseConfigText(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const line = e.pos ? lineCounter.linePos(e.pos[0]).line : undefined;
        return {
          path: line ? `line ${line}` : '(document)',
          expected: 'valid YAML',
          found: e.message.split('\n')[0]!,
        };
      }),
    );
  }
  const result = configSchema.safeParse(doc.toJS(), { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.flatMap((issue) => describeIssue(issue, doc, lineCounter)),
    );
  }
  return deepFreeze(result.data);
}

/** Keys an earlier release had, and what took their place, for a config file written for it. */
const RETIRED_KEYS: Record<string, string> = {
  'workers.notifications':
    'no such key: its queue was split, set workers.fanout, workers.delivery and workers.opsAlerts instead',
};

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter): ConfigProblem[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: withLine([...path, key], doc, lines),
      expected:
        RETIRED_KEYS[[...path, key].join('.')] ??
        (path.join('.') === 'detectors'
          ? unknownDetector(key)
          : 'no such key (check the spelling against README.md#configuration)'),
      found: path.join('.') === 'detectors' ? `unknown detector "${key}"` : `unknown key "${key}"`,
    }));
  }
  return [{ path: withLine(path, doc, lines), expected: expectation(issue), found: shown(issue) }];
}

/** A key under `detectors` that no registered detector has: which ones there are, and how they are keyed. */
function unknownDetector(key: string): string {
  const known = registeredDetectors.map((d) => `${d.configKey} (${d.id})`).join(', ');
  const byId = registeredDetectors.find((d) => d.id === key || configKeyOf(key) === d.configKey);
  if (byId)
    return `detectors.${byId.configKey}: a detector's settings go under its id in camel case (known detectors: ${known})`;
  return `one of the registered detectors: ${known}`;
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'object'
        ? 'a mapping'
        : issue.expected === 'int'
          ? 'an integer'
          : `a ${issue.expected}`;
    case 'not_multiple_of':
      return `a multiple of ${String(issue.divisor)}`;
    case 'invalid_key': {
      // A record key that failed its own check: its message says what a key must look like.
      const inner = issue.issues[0];
      return inner ? expectation(inner) : 'a valid key';
    }
    case 'too_small':
      return `a value ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `a value ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default: {
      const message = issue.message.replace(/^Invalid input: /, '');
      return message.startsWith('expected ') ? message.slice('expected '.length) : message;
    }
  }
}

function shown(issue: z.core.$ZodIssue): string {
  if (!('input' in issue) || issue.input === undefined) return 'nothing (the key is missing)';
  const text = JSON.stringify(issue.input);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function withLine(path: string[], doc: Document, lines: LineCounter): string {
  const dotted = path.length > 0 ? path.join('.') : '(top level)';
  const line = lineOf(path, doc, lines);
  return line ? `${dotted} (line ${line})` : dotted;
}

/** The line of the deepest key or node along `path` that exists in the document. */
function lineOf(path: string[], doc: Document, lines: LineCounter): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth);
    if (depth > 0) {
      // Point at the key itself: its value may be a block that starts lines further down.
      const parent = doc.getIn(prefix.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === prefix[depth - 1],
        );
        const keyRange = pair && isScalar(pair.key) ? pair.key.range : undefined;
        if (keyRange) return lines.linePos(keyRange[0]).line;
      }
    }
    const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
