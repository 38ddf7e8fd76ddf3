// Errors of the template system. Every one is permanent: the same templates and the same data
// fail the same way, so a caller records the failure and sends nothing rather than retrying.
import { ForewarnError } from '../errors.ts';

/** One problem in the templates directory: the file, the 1-based line, and what is wrong. */
export interface TemplateProblem {
  file: string;
  line: number;
  message: string;
}

export function formatProblem(problem: TemplateProblem): string {
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

export class TemplateError extends ForewarnError {
  /** Never worth retrying: see the module comment. */
  readonly permanent = true;
  readonly problems: readonly TemplateProblem[];

  constructor(
    code: 'FW_TEMPLATE_INVALID' | 'FW_TEMPLATE_RENDER',
    message: string,
    options: { problems?: readonly TemplateProblem[]; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.name = 'TemplateError';
    this.problems = options.problems ?? [];
  }
}
