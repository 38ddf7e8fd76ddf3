// The template studio's work on a templates directory: what there is to edit, and for an author's
// edited text (never written unless saved) the real linter's problems and the real renderer's
// message. It holds no state of its own: every call reads the directory as it is, so an edit on
// disk shows at once, and the HTTP role's read-only studio is the same code without `save`.
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { messageIdFor, type EmailSender } from '../channels/email.ts';
import { ForewarnError } from '../errors.ts';
import { validateTemplateData } from '../templates/data.ts';
import { TemplateError, type TemplateProblem } from '../templates/errors.ts';
import { inspectTemplates } from '../templates/lint.ts';
import { canonicalLocale } from '../templates/locale.ts';
import { inAppPage } from '../templates/preview.ts';
import { renderCompiled } from '../templates/render.ts';
import {
  defaultLocale,
  isTemplateKind,
  requiredLocales,
  templateKindNames,
  templateKinds,
  type TemplateChannel,
  type TemplateKind,
} from '../../templates/kinds.ts';
import { allowedBy } from './allow.ts';

/** A refusal with the HTTP status it is answered with (FW_STUDIO_REFUSED). */
export class StudioError extends ForewarnError {
  readonly status: 400 | 403 | 422;
  readonly problems: readonly TemplateProblem[];

  constructor(status: 400 | 403 | 422, message: string, problems: readonly TemplateProblem[] = []) {
    super('FW_STUDIO_REFUSED', message);
    this.name = 'StudioError';
    this.status = status;
    this.problems = problems;
  }
}

export interface StudioVariable {
  name: string;
  /** What it holds, in plain words (templates/kinds.ts `variables`). */
  note: string;
  /** Its value in the kind's sample data, as a person would read it. */
  example: string;
}

export interface StudioKind {
  kind: TemplateKind;
  audience: 'users' | 'ops';
  description: string;
  channels: readonly TemplateChannel[];
  /** Locales with a template (the required ones always), zh-CN first. */
  locales: string[];
  variables: StudioVariable[];
  /** The kind's sample data, where the editable data starts. */
  sample: unknown;
}

export interface Target {
  kind: TemplateKind;
  locale: string;
  channel: TemplateChannel;
}

export interface CheckResult {
  /** The file, relative to the templates directory (e.g. payment-degraded/zh-CN.email.liquid). */
  file: string;
  /** Problems in this file, as `forewarn templates lint` reports them (file relative). */
  problems: TemplateProblem[];
  /** How many problems the rest of the directory has (not the author's to fix here). */
  otherProblems: number;
  /** Why the edited sample data cannot be rendered, or null. */
  dataError: string | null;
  /** The message, when the template compiles and the data fits; null otherwise. */
  message: {
    subject: string | null;
    title: string | null;
    text: string;
    /** The exact email HTML part, or the in-app message drawn as a small page; for a sandboxed frame. */
    html: string;
  } | null;
}

export class Workbench {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Every kind with its locales, variables and sample. */
  async catalog(): Promise<StudioKind[]> {
    const kinds: StudioKind[] = [];
    for (const kind of templateKindNames) {
      const definition = templateKinds[kind];
      const locales = new Set<string>(requiredLocales);
      for (const name of await readdir(join(this.dir, kind)).catch(() => [] as string[])) {
        const match = /^([^.]+)\.([^.]+)\.liquid$/.exec(name);
        if (match && canonicalLocale(match[1]!) === match[1]) locales.add(match[1]!);
      }
      const sample = definition.sample as Record<string, unknown>;
      const notes = definition.variables as Readonly<Record<string, string>>;
      kinds.push({
        kind,
        audience: definition.audience,
        description: definition.description,
        channels: definition.channels,
        // zh-CN first: the language every kind has and most readers get.
        locales: [...locales].sort(
          (a, b) => Number(b === defaultLocale) - Number(a === defaultLocale) || a.localeCompare(b),
        ),
        variables: Object.keys(notes).map((name) => ({
          name,
          note: notes[name]!,
          example: exampleOf(sample[name]),
        })),
        sample,
      });
    }
    return kinds;
  }

  /** The file of `target`, after checking that it names a kind, its channel and a language tag. */
  fileOf(target: { kind: unknown; locale: unknown; channel: unknown }): { path: string; target: Target } {
    const { kind, locale, channel } = target;
    if (typeof kind !== 'string' || !isTemplateKind(kind)) {
      throw new StudioError(
        400,
        `unknown kind ${JSON.stringify(kind)}: expected one of ${templateKindNames.join(', ')}`,
      );
    }
    const channels: readonly string[] = templateKinds[kind].channels;
    if (typeof channel !== 'string' || !channels.includes(channel)) {
      throw new StudioError(
        400,
        `${kind} has no channel ${JSON.stringify(channel)}: expected ${channels.join(' or ')}`,
      );
    }
    // Canonical tags only: nothing else (no "..", no "/") becomes part of a path.
    if (typeof locale !== 'string' || canonicalLocale(locale) !== locale || !/^[A-Za-z0-9-]+$/.test(locale)) {
      throw new StudioError(400, `${JSON.stringify(locale)} is not a language tag such as zh-CN or en`);
    }
    return {
      path: join(this.dir, kind, `${locale}.${channel}.liquid`),
      target: { kind, locale, channel: channel as TemplateChannel },
    };
  }

  /** The template's text on disk; empty for a locale that has no file yet. */
  async read(target: Target): Promise<string> {
    const { path } = this.fileOf(target);
    return readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
  }

  /**
   * Lints the directory as if `text` were the target's file (`full`: with the both-ways check of
   * that file, as `templates lint` runs it) and renders it with `data` (JSON text). Writes nothing.
   */
  async check(target: Target, text: string, data: string | null, full = false): Promise<CheckResult> {
    const { path } = this.fileOf(target);
    const { set, engines } = await inspectTemplates(this.dir, {
      overrides: new Map([[path, text]]),
      // The both-ways check renders each template many times: only the edited file can have changed.
      bothWays: full ? { only: path } : false,
    });
    const mine = (p: TemplateProblem) => p.file === path;
    const problems = set.problems.filter(mine).map((p) => this.#relative(p));
    const result: CheckResult = {
      file: relative(this.dir, path),
      problems,
      otherProblems: set.problems.filter((p) => !mine(p)).length,
      dataError: null,
      message: null,
    };
    const compiled = set.templates.find((t) => t.file === path);
    if (!compiled) return result;
    let values: unknown = templateKinds[target.kind].sample;
    if (data !== null) {
      try {
        values = JSON.parse(data) as unknown;
      } catch (error) {
        result.dataError = `the sample data is not valid JSON: ${(error as Error).message}`;
        return result;
      }
    }
    let valid: Record<string, unknown>;
    try {
      valid = validateTemplateData(target.kind, values, 'sample data') as Record<string, unknown>;
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      result.dataError = error.message;
      return result;
    }
    try {
      const message = renderCompiled(engines, compiled, set.layout, valid);
      result.message = {
        subject: message.subject ?? null,
        title: message.title ?? null,
        text: message.text,
        html: message.channel === 'email' ? (message.html ?? '') : inAppPage(message),
      };
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      // A failure with this data only (the linter's samples rendered): shown beside the data.
      result.dataError = error.problems.length
        ? error.problems.map((p) => `line ${p.line}: ${p.message}`).join('; ')
        : error.message;
    }
    return result;
  }

  /**
   * Saves `text` as the target's file when the full linter finds no problem in it; otherwise
   * refuses (422, with the problems) and leaves the file as it was.
   */
  async save(target: Target, text: string): Promise<{ file: string; problems: TemplateProblem[] }> {
    const { path } = this.fileOf(target);
    const before = await this.check(target, text, null, true);
    if (before.problems.length > 0) {
      throw new StudioError(
        422,
        `not saved: ${before.file} has ${before.problems.length} problem(s); fix them first`,
        before.problems,
      );
    }
    // Written beside it under a hidden name (the linter skips those) and renamed: never half a file.
    const temporary = join(this.dir, target.kind, `.${target.locale}.${target.channel}.${randomUUID()}.tmp`);
    await writeFile(temporary, text, 'utf8');
    await rename(temporary, path);
    // The full lint ran on this very text above; what is on disk now is read back, quickly.
    const after = await this.check(target, text, null);
    return { file: after.file, problems: after.problems };
  }

  /**
   * Sends the rendered target (the edited `text`, `data`) to `to` through `sender`, when `allow`
   * lets the address through. Refusals: 403 for the address, 400/422 for the message.
   */
  async testSend(
    request: { target: Target; text: string; data: string | null; to: unknown },
    options: { allow: readonly string[]; sender: EmailSender; messageIdDomain: string },
  ): Promise<{ to: string; messageId: string; subject: string }> {
    const { target, text, data, to } = request;
    if (typeof to !== 'string' || allowedBy(to.trim(), options.allow) === null) {
      throw new StudioError(
        403,
        options.allow.length === 0
          ? 'test sends are off: templates.studio.testSendAllow in the config lists no address'
          : `${JSON.stringify(to)} is not allowed for test sends: templates.studio.testSendAllow allows ${options.allow.join(', ')}`,
      );
    }
    if (target.channel !== 'email') {
      throw new StudioError(
        400,
        `only email templates can be sent as a test; ${target.channel} is shown here only`,
      );
    }
    const checked = await this.check(target, text, data);
    if (checked.problems.length > 0) {
      throw new StudioError(422, `not sent: ${checked.file} has problems`, checked.problems);
    }
    if (!checked.message) throw new StudioError(400, `not sent: ${checked.dataError ?? 'nothing to send'}`);
    const subject = `[测试 TEST] ${checked.message.subject ?? ''}`;
    const messageId = messageIdFor(`studio-test:${randomUUID()}`, options.messageIdDomain);
    await options.sender.send({
      to: to.trim(),
      subject,
      text: checked.message.text,
      html: checked.message.html,
      messageId,
    });
    return { to: to.trim(), messageId, subject };
  }

  /** Changes whenever a file in the directory is added, removed or written. */
  async version(): Promise<string> {
    const hash = createHash('sha256');
    const walk = async (dir: string, depth: number): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        if (entry.name.startsWith('.')) continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (depth < 1) await walk(path, depth + 1);
          continue;
        }
        const info = await stat(path).catch(() => null);
        if (info) hash.update(`${relative(this.dir, path)}\0${info.mtimeMs}\0${info.size}\n`);
      }
    };
    await walk(this.dir, 0);
    return hash.digest('hex').slice(0, 16);
  }

  #relative(problem: TemplateProblem): TemplateProblem {
    const rel = relative(this.dir, problem.file);
    return { ...problem, file: rel.startsWith('..') ? problem.file : rel };
  }
}

/** A sample value as a person reads it: text as it is, "(empty)" for null, lists as JSON. */
export function exampleOf(value: unknown): string {
  if (value === null || value === undefined) return '(empty / 空)';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const json = JSON.stringify(value);
  return json.length > 240 ? `${json.slice(0, 237)}...` : json;
}
