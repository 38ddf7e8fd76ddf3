// The template studio's pure parts: the test-send allow-list (patterns, case, subdomains, what is
// not an address), the config's check of its patterns, the note every variable needs (the
// linter's check), the examples shown beside them, and the studio's refusal of paths that are
// not a kind's template.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lib/config/schema.ts';
import { allowedBy, allowPatternProblem } from '../../lib/studio/allow.ts';
import { exampleOf, StudioError, Workbench } from '../../lib/studio/workbench.ts';
import { variableNoteProblems } from '../../lib/templates/lint.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { z } from 'zod';

describe('the test-send allow-list', () => {
  const allow = ['*@example.com', 'ops@forewarn.test', 'qa-*@corp.example.org'];

  it('lets through exact addresses and wildcards, ignoring case', () => {
    expect(allowedBy('anyone@example.com', allow)).toBe('*@example.com');
    expect(allowedBy('Anyone@EXAMPLE.com', allow)).toBe('*@example.com');
    expect(allowedBy('ops@forewarn.test', allow)).toBe('ops@forewarn.test');
    expect(allowedBy('qa-lin@corp.example.org', allow)).toBe('qa-*@corp.example.org');
  });

  it('refuses other domains, subdomains, look-alikes and what is not one address', () => {
    for (const address of [
      'a@evil.com',
      'a@sub.example.com',
      'a@example.com.evil.com',
      'ops@forewarn.test.evil.com',
      'xops@forewarn.test',
      'dev@corp.example.org',
      'a@example.com, b@evil.com',
      'A <a@example.com>',
      '@example.com',
      '',
    ]) {
      expect(allowedBy(address, allow), address).toBeNull();
    }
    expect(allowedBy('a@example.com', [])).toBeNull();
  });

  it('a dot in a pattern is a dot, not any character', () => {
    expect(allowedBy('ops@mailxexample.com', ['ops@mail.example.com'])).toBeNull();
    expect(allowedBy('ops@mail.example.com', ['ops@mail.example.com'])).toBe('ops@mail.example.com');
  });

  it('the config refuses patterns that are not an address or allow any domain', () => {
    expect(allowPatternProblem('*@example.com')).toBeNull();
    expect(allowPatternProblem('*@*.example.com')).toBeNull();
    expect(allowPatternProblem('example.com')).toMatch(/not an address pattern/);
    expect(allowPatternProblem('*@*')).toMatch(/allows too much/);
    expect(allowPatternProblem('*@com')).toMatch(/allows too much/);
    const studio = configSchema.shape.templates;
    expect(studio.parse(undefined)).toEqual({ studio: { testSendAllow: [] } });
    const bad = studio.safeParse({ studio: { testSendAllow: ['*@*'] } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['studio', 'testSendAllow', 0]);
  });
});

describe('variable notes', () => {
  it('every variable of every shipped kind has one', () => {
    expect(variableNoteProblems(templateKinds)).toEqual([]);
  });

  it('the linter names a variable without a note, and a note for no variable', () => {
    const schema = z.object({ a: z.string(), b: z.number() }).strict();
    const problems = variableNoteProblems({ 'payment-degraded': { schema, variables: { a: 'x', c: 'y' } } });
    expect(problems.map((p) => p.message)).toEqual([
      'payment-degraded: variable "b" has no note in variables: say in plain words what it holds',
      'payment-degraded: variables has a note for "c", which is not a variable of the kind (its schema has a, b)',
    ]);
    expect(problems[0]!.file).toMatch(/templates\/kinds\.ts$/);
    expect(problems[0]!.line).toBeGreaterThan(1);
    expect(variableNoteProblems({ k: { schema, variables: { a: ' ', b: 'ok' } } })).toHaveLength(1);
  });

  it('examples read as a person reads them', () => {
    expect(exampleOf('微信支付')).toBe('微信支付');
    expect(exampleOf(3)).toBe('3');
    expect(exampleOf(false)).toBe('false');
    expect(exampleOf(null)).toBe('(empty / 空)');
    expect(exampleOf(['支付宝', 'QQ钱包'])).toBe('["支付宝","QQ钱包"]');
    expect(exampleOf({ list: 'x'.repeat(500) })).toHaveLength(240);
  });
});

describe('the studio names only a kind’s own templates', () => {
  const workbench = new Workbench('/nonexistent/templates');
  it.each([
    [{ kind: '../etc', locale: 'zh-CN', channel: 'email' }, /unknown kind/],
    [{ kind: 'payment-degraded', locale: '../../x', channel: 'email' }, /not a language tag/],
    [{ kind: 'payment-degraded', locale: 'zh-cn', channel: 'email' }, /not a language tag/],
    [{ kind: 'payment-degraded', locale: 'zh-CN', channel: 'sms' }, /no channel "sms"/],
    [{ kind: 'ops-stock-low', locale: 'en', channel: 'inapp' }, /no channel "inapp"/],
  ])('%j is refused', (target, message) => {
    expect(() => workbench.fileOf(target)).toThrow(message);
    try {
      workbench.fileOf(target);
    } catch (error) {
      expect(error).toBeInstanceOf(StudioError);
      expect((error as StudioError).status).toBe(400);
    }
  });

  it('a valid one is its file', () => {
    expect(workbench.fileOf({ kind: 'payment-degraded', locale: 'zh-CN', channel: 'email' }).path).toBe(
      '/nonexistent/templates/payment-degraded/zh-CN.email.liquid',
    );
  });
});
