// Checking a message's data against its kind's schema (templates/kinds.ts), before any template
// sees it: what comes out is exactly what the schema declares, with no inherited properties.
import type { z } from 'zod';
import { templateKinds, type TemplateData, type TemplateKind } from '../../templates/kinds.ts';
import { TemplateError } from './errors.ts';

/**
 * Returns the parsed data, or throws a permanent TemplateError (FW_TEMPLATE_RENDER) whose message
 * starts with `context` and names each offending path, e.g. `data.payUrl: Invalid URL`.
 */
export function validateTemplateData<K extends TemplateKind>(
  kind: K,
  data: unknown,
  context: string,
): TemplateData<K> {
  const schema: z.ZodType = templateKinds[kind].schema;
  const result = schema.safeParse(data);
  if (result.success) return result.data as TemplateData<K>;
  const details = result.error.issues.map((issue) => {
    const path = ['data', ...issue.path.map(String)].join('.');
    return `${path}: ${issue.message.replace(/^Invalid input: /, '')}`;
  });
  throw new TemplateError('FW_TEMPLATE_RENDER', `${context}: ${details.join('; ')}`, { cause: result.error });
}
